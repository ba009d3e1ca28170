#!/usr/bin/env bash
# Installs what the engine and its tests need on a Debian 12 machine without a GPU: a CPU Vulkan
# driver that Dawn accepts (Mesa lavapipe >= 24, from bookworm-backports; Debian 12's own Mesa 22
# is refused) and Debian's Chromium for the browser tests (WebGPU on SwiftShader).
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
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
ls /usr/share/vulkan/icd.d/lvp_icd*.json /usr/bin/chromium
