#!/usr/bin/env bash
# Installs what the webgpu tests need on a machine without a GPU (Debian/Ubuntu), if missing:
#   - Mesa's EGL, GLES and llvmpipe: Dawn's OpenGL backend runs WebGPU (compatibility mode) on
#     the CPU there: `backend: webgpu` with no GPU uses it, for correctness tests only.
#   - The Vulkan loader and Mesa's lavapipe: Dawn rejects lavapipe, which is exactly the machine
#     on which `auto` must pass over webgpu quietly (packages/train/test/backend-quiet.test.ts).
# Usage: scripts/install-webgpu-ci.sh   (as root; apt-get update runs only when something is missing)
set -euo pipefail
packages=(libegl-mesa0 libegl1 libgles2 libgl1-mesa-dri libvulkan1 mesa-vulkan-drivers)
missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed' || missing+=("$package")
done
if [ ${#missing[@]} -eq 0 ]; then exit 0; fi
if ! command -v apt-get >/dev/null; then
  echo "install-webgpu-ci: needs apt-get to install ${missing[*]}" >&2
  exit 1
fi
echo "install-webgpu-ci: installing ${missing[*]}"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
