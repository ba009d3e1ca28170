#!/usr/bin/env bash
# Prepares .gpu/ (git-ignored) for bench/gpu.sh on the GPU machine of the device tool, which has
# no registry access and no Node: the CLI and the kernel lab bundled into one file each, the shaders, Node's binary and
# dawn.node (xz-compressed), and the Vulkan loader package. About 30 MB; carried with `carry: [".gpu"]`.
set -euo pipefail
cd "$(dirname "$0")/.."
npm run build >/dev/null
rm -rf .gpu && mkdir -p .gpu/node_modules/webgpu/dist/linux-x64 .gpu/debs
npx esbuild dist/node/cli.js --bundle --platform=node --format=esm --external:webgpu --log-level=warning \
  --banner:js="import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" \
  --outfile=.gpu/dualtoken.mjs
npx tsc -p tsconfig.bench.json
npx esbuild dist-bench/bench/kernels.js --bundle --platform=node --format=esm --external:webgpu --log-level=warning \
  --banner:js="import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" \
  --outfile=.gpu/kernels.mjs
mkdir -p .gpu/shaders && find shaders src/ops -name '*.wgsl' -exec cp {} .gpu/shaders/ \;
cp node_modules/webgpu/index.js node_modules/webgpu/package.json .gpu/node_modules/webgpu/
xz -T2 -c node_modules/webgpu/dist/linux-x64/dawn.node > .gpu/dawn.node.xz
xz -T2 -c "$(command -v node)" > .gpu/node.xz
# The Vulkan loader, for amd64, downloaded with apt's own lists kept out of the system's.
o='-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64-lists'
mkdir -p /tmp/amd64-lists/partial
apt-get $o update -qq
(cd .gpu/debs && apt-get $o download -qq libvulkan1 libglvnd0 libglx0 libgl1 libegl1 libgles2 libopengl0)  # the NVIDIA ICD needs GLVND
du -sh .gpu
