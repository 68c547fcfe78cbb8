#!/usr/bin/env bash
# The decoder A/B of issue 14: today's `small` (A) against `small-cond` with the training-robustness
# options (B), same data, seed, batch, crops and learning rate, each on one CPU thread, resumable.
# Usage: models/ab-train.sh A|B|C|D|E|F [extra train options]   (C: the ablation, B without --prev-noise;
# D: C's options with the WaveNet conditioned on the predicted log-mel, preset small-melcond;
# E: D with half the crops conditioned on the true log-mel, --true-mel 0.5;
# F: D on the shipped model's codes, its encoder and codebook copied and frozen, --codes-from)
# Compare with `python bench/ab_report.py models/ab-*/log.jsonl` at equal logged training time.
# Needs `make corpus` and ../shared/vctk-mini. Stop with Ctrl-C / SIGTERM; run again to resume.
set -euo pipefail
cd "$(dirname "$0")/.."
arm=${1:?usage: models/ab-train.sh A|B|C|D|E|F}; shift
common=(corpus/synth ../shared/vctk-mini --batch-size 4 --crop-seconds 0.5 --lr 5e-4 --lr-schedule constant
  --warmup-steps 100 --steps "${STEPS:-20000}" --seed 0 --checkpoint-every 50 --keep-every 0 --validate-every 250
  --val-fraction 0.02 --holdout p225_003 --holdout p226_003 --holdout p227_003 --holdout p228_003
  --perturb-semitones 5 --probe flite-awb_0001 --probe flite-rms_0001 --probe flite-slt_0001
  --probe festival-kal_0001 --probe-every 250 --probe-seconds 5 --threads "${THREADS:-1}" --quiet --resume)
robust=(--prev-noise 4 --enc-shift 32 --enc-gain-db 6 --enc-noise-snr 20 --weights-ema 0.999)
case "$arm" in
  A) exec .venv/bin/vqconvert train "${common[@]}" --run-dir models/ab-small --preset small "$@" ;;
  B) exec .venv/bin/vqconvert train "${common[@]}" --run-dir models/ab-small-cond --preset small-cond "${robust[@]}" "$@" ;;
  C) exec .venv/bin/vqconvert train "${common[@]}" --run-dir models/ab-small-cond-noprev --preset small-cond \
       --enc-shift 32 --enc-gain-db 6 --enc-noise-snr 20 --weights-ema 0.999 "$@" ;;
  D) exec .venv/bin/vqconvert train "${common[@]}" --run-dir models/ab-small-melcond --preset small-melcond \
       --enc-shift 32 --enc-gain-db 6 --enc-noise-snr 20 --weights-ema 0.999 "$@" ;;
  E) exec .venv/bin/vqconvert train "${common[@]}" --run-dir models/ab-small-melcond-true --preset small-melcond \
       --enc-shift 32 --enc-gain-db 6 --enc-noise-snr 20 --weights-ema 0.999 --true-mel 0.5 "$@" ;;
  F) exec .venv/bin/vqconvert train "${common[@]}" --run-dir models/ab-small-melcond-frozen --preset small-melcond \
       --enc-shift 32 --enc-gain-db 6 --enc-noise-snr 20 --weights-ema 0.999 \
       --codes-from models/vqconvert-synth-small.pt "$@" ;;
  *) echo "unknown arm $arm (A, B, C, D, E or F)" >&2; exit 2 ;;
esac
