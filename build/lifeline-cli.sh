#!/bin/sh
# lifeline, the command-line client (docs/cli.md), as the app packages ship it: resources/lifeline
# runs the CLI inside app.asar with the app's own Electron as Node (no separate Node needed).
here=$(dirname "$(readlink -f "$0")")
app=$(dirname "$here")
for exe in "$app/lifeline-desktop" "$app/lifeline" "$app/Lifeline" "$app/MacOS/Lifeline"; do
  if [ -x "$exe" ] && [ ! -d "$exe" ]; then
    LIFELINE_CLI="$here/lifeline" ELECTRON_RUN_AS_NODE=1 exec "$exe" "$here/app.asar/dist-desktop/main/cli/lifeline.js" "$@"
  fi
done
echo "lifeline: cannot find the Lifeline app's executable beside $here" >&2
exit 1
