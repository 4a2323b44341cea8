#!/usr/bin/env bash
# slim-store.sh <mlflow-store> <out.tar.gz> [every]: packs an MLflow file store small enough to
# commit beside a device session's logs (docs/runs/), so that `interleave report` can be run again
# over a later session's runs merged with it. Kept: every run's params, tags, meta.yaml and config
# artifact, every `eval/…` metric point, and of the per-step metrics (`train/…`, `compute/…`) every
# <every>-th step (default 100) and the last. Dropped: checkpoints and other artifacts. The report
# reads evaluations, final compute and the last step, all kept; a training curve keeps its shape.
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: slim-store.sh <mlflow-store> <out.tar.gz> [every]" >&2; exit 2; }
store=$1 out=$2 every=${3:-100}
[ -d "$store" ] || { echo "slim-store.sh: no store folder '$store'" >&2; exit 2; }
[[ $every =~ ^[1-9][0-9]*$ ]] || { echo "slim-store.sh: <every> must be a positive whole number, got '$every'" >&2; exit 2; }
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
(cd "$store" && find . -path '*/artifacts/*' -prune -o -type f -print) | while read -r file; do
  mkdir -p "$stage/$(dirname "$file")"
  case $file in
    */metrics/train/* | */metrics/compute/*)
      # MLflow's metric line: <timestamp> <value> <step>.
      awk -v every="$every" '{ last = $0 } $3 % every == 0 { print } END { if (last != "" && $3 % every != 0) print last }' \
        "$store/$file" >"$stage/$file" ;;
    *) cp "$store/$file" "$stage/$file" ;;
  esac
done
# The resolved config of each run (artifacts/config.yaml), which the report's labels read.
(cd "$store" && find . -path '*/artifacts/config.yaml' -print) | while read -r file; do
  mkdir -p "$stage/$(dirname "$file")" && cp "$store/$file" "$stage/$file"
done
tar -czf "$out" -C "$stage" .
echo "slim-store: $(find "$stage" -type f | wc -l) files, $(du -sk "$stage" | cut -f1) KiB -> $out ($(($(stat -c %s "$out") / 1024)) KiB)"
