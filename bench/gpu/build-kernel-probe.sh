#!/usr/bin/env bash
# Packs bench/gpu/kernel-probe.ts for the GPU machine (no Node, no network there) into $1
# (default .devcarry-kern/, git-ignored): one esbuild bundle, the `webgpu` package's linux-x64
# Dawn binding, this machine's Node binary, Debian's Vulkan loader and a setup script.
# On the GPU machine, from the folder's parent:
#   source .devcarry-kern/setup.sh && node .devcarry-kern/probe.mjs tinyop matmul scan recurrence hybrid:16
set -euo pipefail
root=$(git rev-parse --show-toplevel)
out=$(realpath -m "${1:-$root/.devcarry-kern}")
rm -rf "$out" && mkdir -p "$out/node_modules/webgpu" "$out/debs"
cd "$root"
webgpu=$(dirname "$(node -e "console.log(require.resolve('webgpu/package.json', {paths: ['packages/core']}))")")
npx esbuild bench/gpu/kernel-probe.ts --bundle --platform=node --format=esm --target=node20 \
  --outfile="$out/probe.mjs" --external:webgpu --external:@tensorflow/tfjs-node --external:@tensorflow/tfjs-node-gpu \
  --banner:js="import { createRequire as interleaveRequire } from 'node:module'; const require = interleaveRequire(import.meta.url);" \
  --log-level=warning
cp "$webgpu/package.json" "$webgpu/index.js" "$out/node_modules/webgpu/"
mkdir -p "$out/node_modules/webgpu/dist" && cp -r "$webgpu/dist/linux-x64" "$out/node_modules/webgpu/dist/"
tar -cJf "$out/node.tar.xz" -C "$(dirname "$(readlink -f "$(command -v node)")")" node
# The NVIDIA Vulkan ICD loads through libglvnd (libGLX_nvidia), so the GL dispatch libraries come too.
(cd "$out/debs" && apt-get download libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2 >/dev/null 2>&1)
cat > "$out/setup.sh" <<'SETUP'
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
for f in "$here"/debs/*.deb; do dpkg -x "$f" /; done
ldconfig
mkdir -p /tmp/node-bin && tar -xJf "$here/node.tar.xz" -C /tmp/node-bin
export PATH=/tmp/node-bin:$PATH
if [ -f /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json ]; then
  export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
fi
node --version && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
SETUP
du -sh "$out" "$out"/*
