#!/usr/bin/env bash
# Issue 14, item 7, step 2: runs ON a lent GPU machine, from the repo root, with .gpu/ carried (made here by
# models/gpu-pack.sh). Trains the shipped design (models/train-cond.sh's options) from scratch for
# TRAIN_S seconds of wall clock and leaves in $OUT the exported model (EMA weights, fp16, about 3 MB),
# the run's log.jsonl, the pack manifest and the GPU's name. See models/README.md, "GPU run".
# The step count of the cosine schedule is fitted to the time: a CAL-step warm-up run measures the
# speed, then the run resumes with --steps set so that it ends on time (the warm-up steps are the same
# either way: lr warmup does not depend on --steps).
# Dry run on the CPU machine: DEVICE=cpu PRESET=tiny-cond BATCH=2 TRAIN_S=60 CAL=10 OUT=/tmp/g models/gpu-train.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-python3}
OUT=${OUT:-out/gpu}
DEVICE=${DEVICE:-cuda}
PRESET=${PRESET:-small-cond}
BATCH=${BATCH:-32}
TRAIN_S=${TRAIN_S:-420}   # from the start of this script to the end of training; export adds ~10 s
CAL=${CAL:-60}
RESERVE=${RESERVE:-25}    # seconds kept for the resume's start-up and the final checkpoint
RUN=${RUN:-/tmp/vqconvert-gpu-run}
CACHE=${CACHE:-/tmp/vqconvert-gpu-cache}
start=$(date +%s)
mkdir -p "$OUT"
[ -d .gpu/data ] || { echo "error: no .gpu/data: run models/gpu-pack.sh first and carry .gpu" >&2; exit 1; }
if ! $PY -c "import soundfile, soxr, librosa" 2>/dev/null; then
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .gpu/whl/*.whl
  export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
$PY -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'no GPU')" \
  | tee "$OUT/device.txt"
cp .gpu/data/pack.json "$OUT/"
DATA=(.gpu/data/*/)
# the cache is built once with every core (the trainer's own build is single-threaded), then found by key
$PY -c "import sys, os; from vqconvert.data.cache import load_or_build_cache as b; \
b(sys.argv[1:], '$CACHE', progress=False, jobs=os.cpu_count() or 1)" "${DATA[@]}"
ARGS=("${DATA[@]}" --run-dir "$RUN" --cache-dir "$CACHE" --preset "$PRESET" --batch-size "$BATCH"
  --crop-seconds 0.5 --lr 5e-4 --lr-schedule cosine --warmup-steps 200 --seed 0 --sample-by duration
  --perturb-semitones 5 --enc-shift 32 --enc-gain-db 6 --enc-noise-snr 20 --weights-ema 0.999
  --checkpoint-every 1000 --validate-every 1000 --val-fraction 0.02 --device "$DEVICE" --quiet
  --holdout p225_003 --holdout p226_003 --holdout p227_003 --holdout p228_003
  --holdout flite-awb_0001 --holdout flite-rms_0001 --holdout flite-slt_0001 --holdout festival-kal_0001)
rm -rf "$RUN"
$PY -m vqconvert train "${ARGS[@]}" --steps "$CAL"
# seconds per step over the last logged window (after start-up), then the steps that fit the time left
STEPS=$($PY - "$RUN/log.jsonl" "$CAL" "$BATCH" "$(( TRAIN_S - RESERVE - $(date +%s) + start ))" <<'EOF'
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1]) if '"audio_s_per_s"' in line]
cal, batch, left = int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
step_s = batch * 0.5 / rows[-1]["audio_s_per_s"]
print(cal + max(0, int(left / step_s)), file=sys.stdout)
print(f"calibration: {step_s * 1000:.1f} ms/step; {left:.0f} s left", file=sys.stderr)
EOF
)
echo "training to step $STEPS" >&2
# SIGTERM at the deadline all the same (the trainer finishes its step and saves): speed can drift
rc=0
left=$(( TRAIN_S - $(date +%s) + start ))
if [ "$STEPS" -gt "$CAL" ] && [ "$left" -gt 0 ]; then
  timeout -s TERM -k 60 "$left" $PY -m vqconvert train "${ARGS[@]}" --steps "$STEPS" --resume || rc=$?
fi
[ "$rc" = 0 ] || [ "$rc" = 124 ] || exit "$rc"
[ "$rc" = 0 ] || echo "stopped at the deadline before step $STEPS" | tee -a "$OUT/device.txt"
echo "trained in $(( $(date +%s) - start )) s (budget $TRAIN_S)" | tee -a "$OUT/device.txt"
cp "$RUN/log.jsonl" "$OUT/"
$PY -m vqconvert export "$RUN" "$OUT/vqconvert-gpu.pt" --force
