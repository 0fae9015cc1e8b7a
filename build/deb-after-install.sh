#!/bin/bash
# Debian package: the app as /usr/bin/${executable}, the CLI as /usr/bin/lifeline (docs/cli.md).
ln -sf '/opt/${sanitizedProductName}/${executable}' '/usr/bin/${executable}'
ln -sf '/opt/${sanitizedProductName}/resources/lifeline' '/usr/bin/lifeline'
# Chromium's setuid sandbox helper, as electron-builder's own script sets it.
chmod 4755 '/opt/${sanitizedProductName}/chrome-sandbox' || true
if hash update-mime-database 2>/dev/null; then update-mime-database /usr/share/mime || true; fi
if hash update-desktop-database 2>/dev/null; then update-desktop-database /usr/share/applications || true; fi
