@echo off
rem lifeline, the command-line client (docs/cli.md): the CLI inside app.asar, run by the app's own Electron as Node.
set ELECTRON_RUN_AS_NODE=1
set LIFELINE_CLI="%~dp0lifeline.cmd"
"%~dp0..\Lifeline.exe" "%~dp0app.asar\dist-desktop\main\cli\lifeline.js" %*
