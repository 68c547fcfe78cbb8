#!/usr/bin/env bash
# Issue 14, item 7, step 1 (here, on the CPU machine): fill .gpu/ (git-ignored) with what a lent GPU machine
# needs to run models/gpu-train.sh: wheels of the audio packages its image lacks (Python 3.12; numba, scipy,
# scikit-learn and the other librosa needs are there), and the
# training corpora as Ogg Opus (vqconvert.data.pack) sized so that the tree that travels stays under the
# device tool's 64 MiB. The real speech (../shared/vctk-mini, ../shared/librispeech-251) goes in whole; the
# synthetic corpus fills the rest, round-robin over its voices. Needs `make corpus` and ../shared.
# Takes about 10 minutes of one core. The pack is never committed: .gpu/ is in .gitignore.
set -euo pipefail
cd "$(dirname "$0")/.."
LIMIT=$((64 * 1024 * 1024))
MARGIN=$((2 * 1024 * 1024))
rm -rf .gpu/whl
mkdir -p .gpu/whl
.venv/bin/python -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d .gpu/whl \
  soundfile==0.14.0 soxr==1.1.0 cffi==2.1.1 pycparser==3.12 \
  librosa==0.11.0 audioread==3.1.0 decorator==5.3.1 pooch==1.9.0 platformdirs==4.14.9  # pitch_shift's librosa
# what travels besides .gpu/: tracked files (deleted ones skipped) and untracked ones git does not ignore
tree=$( (git ls-files -z; git ls-files -z -o --exclude-standard) | { xargs -0 -r stat -c %s 2>/dev/null || true; } \
  | awk '{s += $1} END {print s + 0}')
whl=$(du -cb .gpu/whl | tail -1 | cut -f1)
budget=${BUDGET:-$((LIMIT - MARGIN - tree - whl))}  # BUDGET=bytes overrides (e.g. before a file leaves the tree)
echo "tree $((tree / 1048576)) MiB, wheels $((whl / 1024)) KiB: $((budget / 1048576)) MiB left for audio" >&2
[ "$budget" -gt $((8 * 1024 * 1024)) ] || { echo "error: under 8 MiB left for audio: the tree is too big" >&2; exit 1; }
.venv/bin/python -m vqconvert.data.pack corpus/synth ../shared/vctk-mini ../shared/librispeech-251 \
  --whole ../shared/vctk-mini --whole ../shared/librispeech-251 --budget "$budget" --out .gpu/data --force
du -sh .gpu
