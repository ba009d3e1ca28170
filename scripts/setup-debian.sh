#!/usr/bin/env bash
# Installs what the engine and its tests need on a Debian 12 machine without a GPU: a CPU Vulkan
# driver that Dawn accepts (Mesa lavapipe >= 24, from bookworm-backports; Debian 12's own Mesa 22
# is refused), Debian's Chromium for the browser tests (WebGPU on SwiftShader) and redis-server for
# the queue tests (they start their own on a free loopback port; the package's system service is
# stopped and disabled here, so that no Redis is left listening on 6379).
# Idempotent; needs root (or sudo).
set -euo pipefail
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

if ! grep -rqs "bookworm-backports" /etc/apt/sources.list /etc/apt/sources.list.d/; then
  $SUDO tee /etc/apt/sources.list.d/bookworm-backports.sources >/dev/null <<'SRC'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq -t bookworm-backports mesa-vulkan-drivers libvulkan1 >/dev/null
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium redis-server >/dev/null
# The redis-server package starts its service on install (systemd, or the init script in a
# container): stop it and keep it from starting at boot. Tests and `dualtoken worker` users run
# their own Redis.
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null; then
  $SUDO systemctl disable --now redis-server >/dev/null 2>&1 || true
else
  $SUDO service redis-server stop >/dev/null 2>&1 || true
  if command -v update-rc.d >/dev/null; then $SUDO update-rc.d redis-server disable >/dev/null 2>&1 || true; fi
fi
if [ -f /run/redis/redis-server.pid ]; then
  $SUDO kill "$(cat /run/redis/redis-server.pid)" 2>/dev/null || true
fi
ls /usr/share/vulkan/icd.d/lvp_icd*.json /usr/bin/chromium /usr/bin/redis-server
