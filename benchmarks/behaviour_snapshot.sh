#!/usr/bin/env bash
# The CLI's outputs on the repository's own data, offline, for `diff -r` before and after a change
# that must not change behaviour (issue 20): `bash benchmarks/behaviour_snapshot.sh DIR`, on the old
# and the new code, then `diff -r OLD NEW`. Only files whose bytes depend on the work alone are kept
# (timings are printed, never written into these files). About 3 minutes on 2 CPU cores.
set -euo pipefail
out="${1:?usage: behaviour_snapshot.sh OUTPUT_DIR}"
cd "$(dirname "$0")/.."
export PYTHONHASHSEED=0
p2p-real edit data/shapes --output "$out/shapes" --model shapes --batch-size 3 -q
p2p-real edit "$out/shapes/circle" --target "a large green circle on a plain white background" --blend circle circle \
    --output "$out/shapes" --model shapes --maps -q
p2p-real invert data/photos --output "$out/photos" --model tiny-random -q
p2p-real edit data/photos --output "$out/photos" --model tiny-random -q
p2p-real invert data/photos/chelsea.jpg --prompt "a photo of a cat" --method direct --output "$out/direct" --model tiny-random -q
p2p-real edit "$out/direct/chelsea" --target "a photo of a dog" --output "$out/direct" --model tiny-random -q
