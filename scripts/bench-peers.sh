#!/usr/bin/env bash
# Installs the peers `npm run bench` measures the relay against: Debian's OpenSSH server (run by
# the benchmark with its own config on its own port), socat, and websockify with numpy.
# The openssh-server package would start a system sshd on port 22; a policy-rc.d stops that
# for the install, so nothing listens afterwards that was not listening before.
set -euo pipefail

packages=(openssh-server socat websockify python3-numpy)
if [ "$(id -u)" -eq 0 ]; then sudo=(); else sudo=(sudo); fi
missing=()
for pkg in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "bench-peers: installing ${missing[*]}"
policy=/usr/sbin/policy-rc.d
placed=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' | "${sudo[@]}" tee "$policy" >/dev/null
  "${sudo[@]}" chmod 755 "$policy"
  placed=1
fi
cleanup() { if [ "$placed" -eq 1 ]; then "${sudo[@]}" rm -f "$policy"; fi; }
trap cleanup EXIT
"${sudo[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
# Where systemd runs, the package enabled the system sshd for the next boot: undo what we did.
if [[ " ${missing[*]} " == *" openssh-server "* ]] && [ -d /run/systemd/system ]; then
  "${sudo[@]}" systemctl disable --now ssh.service ssh.socket >/dev/null 2>&1 || true
  echo "bench-peers: the system sshd (ssh.service) is left disabled; the benchmark runs its own"
fi
