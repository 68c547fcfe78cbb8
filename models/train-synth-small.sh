#!/usr/bin/env bash
# Trains, or continues, the shipped model `models/vqconvert-synth-small.pt`; then re-exports it.
# Needs the synthetic corpus (`make corpus`) and the real VCTK clips at ../shared/vctk-mini.
# The run directory (latest.pt with optimizer state, log.jsonl) is committed, so any session can resume.
# EXPORT=0 skips the export; THREADS=2 when the machine is otherwise idle (1 beside other work).
# Stop it at any time with Ctrl-C or SIGTERM: it finishes the step, saves, and the next run resumes.
set -euo pipefail
cd "$(dirname "$0")/.."
RUN=${RUN:-models/synth-small-run}
.venv/bin/vqconvert train corpus/synth ../shared/vctk-mini --run-dir "$RUN" --preset small --steps 15000 \
  --batch-size 4 --crop-seconds 0.5 --lr 5e-4 --warmup-steps 100 --checkpoint-every 50 --keep-every 1000 \
  --validate-every 200 --val-fraction 0.02 \
  --holdout p225_003 --holdout p226_003 --holdout p227_003 --holdout p228_003 \
  --perturb-semitones 5 --compile --threads "${THREADS:-1}" --quiet --resume "$@"
[ "${EXPORT:-1}" = 0 ] || .venv/bin/vqconvert export "$RUN" models/vqconvert-synth-small.pt --force
