#!/bin/bash
# Debian package removal: the two links deb-after-install.sh made.
rm -f '/usr/bin/${executable}' '/usr/bin/lifeline'
