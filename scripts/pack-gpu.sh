#!/usr/bin/env bash
# Builds a self-contained folder that runs Interleave's CLI and `pnpm bench` on a GPU machine
# that has the NVIDIA driver (and its Vulkan manifest) but no Node.js and no network.
#
#   scripts/pack-gpu.sh [out-dir]        (from a checkout after `pnpm install`; default .devcarry-gpu)
#
# What it writes (see docs/gpu.md, "Running on a GPU machine"): setup.sh, node.tar.xz, debs/ and
# payload.tar.xz, which setup.sh unpacks in place into:
#   interleave.mjs, bench/bench.mjs, bench/child-entry.mjs   the CLI and the benchmark, bundled by
#                      esbuild (every JS dependency inlined; the scan kernels' and the batch worker
#                      beside each)
#   bench/kernel-probe.mjs   bench/gpu/kernel-probe.ts (docs/gpu.md's per-kernel and per-step figures)
#   node_modules/webgpu  Dawn's Node binding for linux-x64 only (native: cannot be bundled)
#   node_modules/@interleave-examples/*, configs/plugins/*.mjs   the plugins, each bundled alone, and
#                      node_modules/{@interleave/core,@tensorflow/tfjs,zod}: the CLI's instances of
#                      what they import (scripts/gpu/bundle-entry.ts)
#   *.wasm             tfjs-backend-wasm's binaries, found next to the bundle that loads them
#   configs/, peer/hybrid.py   the configs and the PyTorch peer the benchmark runs
#   node.tar.xz        this machine's Node binary
#   debs/*.deb         Debian's Vulkan loader (Dawn needs libvulkan.so.1) and GL dispatch libraries
#   setup.sh           run first on the GPU machine: installs the loader, unpacks Node
#   one-gpu.sh         runs a command that sees one GPU of several (scripts/gpu/one-gpu.sh)
# On the GPU machine, from the folder's parent:  source <out-dir>/setup.sh && cd <out-dir> && ...
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
out=${1:-.devcarry-gpu}
limit_mib=60

[ -x node_modules/.bin/esbuild ] || { echo "pack-gpu: run 'npx -y pnpm@10.34.9 install' first (esbuild missing)" >&2; exit 1; }
resolve_package() { # the real folder of a package as the workspace resolves it
  node -e "const path=require('path');const r=require('module').createRequire(path.resolve('$2/package.json'));console.log(path.dirname(r.resolve('$1/package.json')))"
}
webgpu=$(resolve_package webgpu packages/core)
wasm=$(resolve_package @tensorflow/tfjs-backend-wasm packages/core)

rm -rf "$out" && mkdir -p "$out/debs"
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/bench" "$stage/peer"

# --- the bundles. The banner gives CommonJS dependencies (tfjs-backend-wasm finds its .wasm
# through __dirname) what they expect inside an ES module.
banner="import { createRequire as __cr } from 'node:module'; import { fileURLToPath as __fu } from 'node:url'; import { dirname as __dn } from 'node:path'; const require = __cr(import.meta.url); const __filename = __fu(import.meta.url); const __dirname = __dn(__filename);"
worker=packages/blocks/src/scan/kernels/scan-worker.mjs
batches=scripts/gpu/batch-worker-entry.ts
node_modules/.bin/esbuild \
  "interleave=scripts/gpu/bundle-entry.ts" "scan-worker=$worker" "batch-worker=$batches" \
  "bench/bench=bench/main.ts" "bench/child-entry=bench/isolation/child.ts" "bench/scan-worker=$worker" \
  "bench/batch-worker=$batches" \
  "bench/kernel-probe=bench/gpu/kernel-probe.ts" \
  --bundle --platform=node --format=esm --target=node20 --outdir="$stage" --out-extension:.js=.mjs \
  --external:webgpu --external:@tensorflow/tfjs-node --external:@tensorflow/tfjs-node-gpu \
  --banner:js="$banner" --log-level=warning

# --- plugins. Each is bundled on its own with the modules it shares with the CLI left external;
# node_modules/<name>/index.mjs hands out the CLI's instances (scripts/gpu/bundle-entry.ts).
externals=()
for name in $(node_modules/.bin/tsx scripts/gpu/write-shared-modules.ts "$stage"); do externals+=("--external:$name"); done
bundle_plugin() { # entry, output file
  node_modules/.bin/esbuild "$1" --bundle --platform=node --format=esm --target=node20 --outfile="$2" \
    "${externals[@]}" --log-level=warning
}
for package in examples/plugins/*/package.json; do
  read -r name entry < <(node -e 'const p=require("./"+process.argv[1]); const e=p.exports; console.log(p.name, typeof e==="string"?e:e["."])' "$package")
  mkdir -p "$stage/node_modules/$name"
  bundle_plugin "$(dirname "$package")/$entry" "$stage/node_modules/$name/index.mjs"
  printf '{ "name": "%s", "type": "module", "exports": "./index.mjs" }\n' "$name" >"$stage/node_modules/$name/package.json"
done

# --- what cannot be bundled: Dawn (native), the wasm binaries, configs, the Python peer.
mkdir -p "$stage/node_modules/webgpu/dist/linux-x64"
cp "$webgpu/index.js" "$webgpu/package.json" "$stage/node_modules/webgpu/"
cp "$webgpu/dist/linux-x64/dawn.node" "$stage/node_modules/webgpu/dist/linux-x64/"
cp "$wasm"/dist/*.wasm "$stage/"
cp "$wasm"/dist/*.wasm "$stage/bench/"
cp -r configs "$stage/configs"
# A config names its plugin file as .ts; the bundle loads the .mjs compiled beside it.
for plugin in configs/plugins/*.ts; do bundle_plugin "$plugin" "$stage/${plugin%.ts}.mjs"; done
cp bench/peer/hybrid.py "$stage/peer/"
XZ_OPT=-T2 tar -cJf "$out/payload.tar.xz" -C "$stage" .

# --- Node and the Vulkan loader. The GPU machine's NVIDIA Vulkan driver needs the loader
# (libvulkan1) and, for its GLX/EGL side, the GL dispatch libraries.
XZ_OPT=-T2 tar -cJf "$out/node.tar.xz" -C "$(dirname "$(readlink -f "$(command -v node)")")" node
debs=(libvulkan1 libglvnd0 libegl1 libgl1 libglx0 libopengl0)
download() { (cd "$out/debs" && apt-get "$@" download "${debs[@]}" >/dev/null 2>&1); }
# The system's package lists first; where they are missing or stale, fresh ones in a scratch folder.
if ! download; then
  lists=(-o "Dir::State::Lists=$stage/apt-lists")
  mkdir -p "$stage/apt-lists/partial"
  apt-get "${lists[@]}" update >/dev/null 2>&1 || true
  download "${lists[@]}" || { echo "pack-gpu: apt-get download ${debs[*]} failed (no network or no apt?)" >&2; exit 1; }
fi

# Several GPUs on one host: one-gpu.sh runs a process that sees one of them (docs/gpu.md).
cp scripts/gpu/one-gpu.sh "$out/one-gpu.sh"

cat >"$out/setup.sh" <<'SETUP'
# Source on the GPU machine from the folder's parent:  source <folder>/setup.sh
# Installs the Vulkan loader (as root: dpkg -x into /), puts this Node on PATH, says what GPU it sees.
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
tar -xJf "$here/payload.tar.xz" -C "$here"
for deb in "$here"/debs/*.deb; do dpkg -x "$deb" /; done
ldconfig
mkdir -p /tmp/interleave-node && tar -xJf "$here/node.tar.xz" -C /tmp/interleave-node
export PATH=/tmp/interleave-node:$PATH
# Containers often mount the driver's Vulkan manifest outside the loader's search path.
for icd in /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json /etc/vulkan/icd.d/nvidia_icd.json /usr/share/vulkan/icd.d/nvidia_icd.json; do
  if [ -f "$icd" ]; then export VK_DRIVER_FILES=$icd; break; fi
done
echo "node $(node --version); GPU: $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null || echo 'none found')"
SETUP

size=$(du -sb "$out" | cut -f1)
printf 'pack-gpu: %s is %d MiB\n' "$out" "$((size / 1048576))"
if [ "$size" -ge $((limit_mib * 1048576)) ]; then
  echo "pack-gpu: over the ${limit_mib} MiB budget" >&2
  exit 1
fi
