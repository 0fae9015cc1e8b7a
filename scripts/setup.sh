#!/usr/bin/env bash
# Installs what Lifeline needs on Debian or Ubuntu, then its npm dependencies, then builds.
# System packages: QEMU and a static busybox (lab VMs), the OpenSSH client (the console path
# users type, and the tests), tmux and bash-completion (the CLI's interactive and completion tests), asciinema (an asciicast reader from outside this repository checks the recordings), Chromium and gvnccapture (the VNC tests drive noVNC and a real
# VNC client), openssl and curl (the TLS tests check the relay's certificate as users would), ssh-audit and putty-tools (the SSH algorithms are audited and PuTTY's plink must connect), python3-paramiko and python3-asyncssh (the SSH libraries automation uses must connect), prometheus (promtool checks GET /metrics), systemd (systemd-analyze checks the relay's unit), libvirt (the discovery tests run a real libvirtd), and PostgreSQL (the fleet tests start their own server: initdb into a temp dir, own port), and a C++ toolchain (better-sqlite3 and ssh2 build from source).
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(qemu-system-x86 busybox-static openssh-client tmux asciinema bash-completion openssl curl ssh-audit putty-tools python3-paramiko python3-asyncssh prometheus systemd chromium gvncviewer dbus gnome-keyring libsecret-tools libsecret-1-dev libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients python3 make g++ ca-certificates e2fsprogs mount postgresql)

if [ "$(id -u)" -eq 0 ]; then sudo=(); else sudo=(sudo); fi
if ! command -v apt-get >/dev/null; then
  echo "setup: this script needs apt-get (Debian or Ubuntu). Install the equivalents of: ${packages[*]}" >&2
  exit 1
fi

missing=()
for pkg in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
# The lab VM's kernel may come from `apt-get download`, which needs package lists.
if ! ls /var/lib/apt/lists/*_Packages >/dev/null 2>&1; then
  "${sudo[@]}" apt-get update -qq
fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
  # Only promtool is wanted from the prometheus package: where systemd started its server, stop it again.
  if [[ " ${missing[*]} " == *" prometheus "* ]] && [ -d /run/systemd/system ]; then
    "${sudo[@]}" systemctl disable --now prometheus >/dev/null 2>&1 || true
  fi
fi

if ! command -v node >/dev/null || [ "$(node -p 'process.versions.node.split(".")[0]')" -lt 20 ]; then
  echo "setup: Node.js 20 or newer is needed (https://nodejs.org or your distribution's nodejs package)" >&2
  exit 1
fi

# Electron's installer downloads its binary from outside the npm registry: install without it,
# then try the download separately so a closed network only costs the Electron window
# (browser mode, `npm run web`, works without it).
export ELECTRON_SKIP_BINARY_DOWNLOAD=1
if [ -f package-lock.json ]; then npm ci --no-audit --no-fund; else npm install --no-audit --no-fund; fi
if ! (unset ELECTRON_SKIP_BINARY_DOWNLOAD; timeout 120 node node_modules/electron/install.js) >/dev/null 2>&1; then
  echo "setup: the Electron binary could not be downloaded; npm start will use browser mode instead"
fi
npm run build
echo "setup: done. Start the app with: npm start (browser mode: npm run web; relay only: npm run demo). Run the tests with: npm test"
