#!/usr/bin/env bash
# one-gpu.sh <index> <command> [args...]: runs the command so that the NVIDIA driver, and with it Vulkan and
# Dawn, sees GPU <index> alone. For hosts with several identical GPUs: Dawn's Node binding takes the first
# adapter whose name matches (and identical GPUs share one name), and the driver's Vulkan side ignores
# CUDA_VISIBLE_DEVICES, so without this every Interleave process on the host trains on GPU 0.
#
# How: a private mount namespace whose /dev is a read-only copy of the real one without the other
# /dev/nvidia<N> nodes. Read-only matters: as root, the driver recreates a missing node on first use (seen
# on an H200 pair, 2026-11-30), and then sees every GPU again. Needs root (mount namespaces) and unshare.
#
#   scripts/gpu/one-gpu.sh 1 node interleave.mjs train configs/mqar-hybrid.yaml
#   scripts/gpu/one-gpu.sh 1 nvidia-smi -L          # lists the one GPU the command sees
set -euo pipefail
usage() { echo "usage: one-gpu.sh <gpu index> <command> [args...]" >&2; exit 2; }
[ $# -ge 2 ] || usage
[[ $1 =~ ^[0-9]+$ ]] || { echo "one-gpu.sh: the GPU index must be a number, got '$1'" >&2; exit 2; }
[ -e "/dev/nvidia$1" ] || { echo "one-gpu.sh: no /dev/nvidia$1 on this host (GPUs: $(ls /dev | grep -cE '^nvidia[0-9]+$'))" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "one-gpu.sh: needs root (it makes a mount namespace)" >&2; exit 2; }

# The inner script runs inside the new namespace: its mounts vanish with the command.
exec unshare --mount --propagation private bash -c '
  set -e
  keep=$1; shift
  dev=$(mktemp -d /tmp/one-gpu-dev.XXXXXX)
  mount -t tmpfs -o mode=755 tmpfs "$dev"
  cp -a /dev/. "$dev"/ 2>/dev/null || true   # sockets and busy entries may not copy; device nodes do
  for node in "$dev"/nvidia[0-9]*; do
    [ "$node" = "$dev/nvidia$keep" ] || rm -f "$node"
  done
  # Shared memory and terminals stay the real, writable ones.
  for sub in shm pts mqueue; do
    if mountpoint -q "/dev/$sub"; then mkdir -p "$dev/$sub"; mount --bind "/dev/$sub" "$dev/$sub"; fi
  done
  mount -o remount,ro "$dev"
  mount --rbind "$dev" /dev
  exec "$@"' one-gpu "$1" "${@:2}"
