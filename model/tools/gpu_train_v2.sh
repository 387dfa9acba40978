#!/usr/bin/env bash
# One GPU session's worth of the wider-vocabulary denoiser (issue 16), as one prepared command for the `device`
# machine (15 minutes of device time in all, start-up included, so the run itself gets MINUTES, default 7):
#   run: bash model/tools/gpu_train_v2.sh            (OUT=$OUT on the device; checkpoints come back under $OUT/v2)
#   here: DEVICE=cpu MINUTES=0.3 WORKERS=0 BATCH=8 OUT=/tmp/v2 bash model/tools/gpu_train_v2.sh   (a smoke run)
# Warm start from the shipped weights (model/weights/torch/ckpt.pt, its 111-word embedding widened to scenes.VOCAB2),
# data v2 with 30% v1 samples, edits weighted towards "remove". Then export and evaluate here:
#   /usr/bin/python3 model/export.py --ckpt OUT/v2/ema16.pt --sr-ckpt model/weights/torch/sr.pt --out /tmp/cand (after
#   cp -r model/weights /tmp/cand), bash model/tools/eval_server.sh /tmp/cand --sample 12 --neg-seeds 5 ...
set -euo pipefail
cd "$(dirname "$0")/../.."
DEVICE="${DEVICE:-cuda}"
MINUTES="${MINUTES:-7}"
WORKERS="${WORKERS:-15}"
BATCH="${BATCH:-192}"
OUT="${OUT:-model/checkpoints}"
PY="${PYTHON:-/usr/bin/python3}"
[ -x "$PY" ] || PY=python3
mkdir -p "$OUT/v2"
"$PY" model/train.py --device "$DEVICE" --minutes "$MINUTES" --workers "$WORKERS" --batch "$BATCH" --lr 6e-4 --warmup 200 \
  --ema 0.999 --ckpt-minutes 2 --data 2 --p-v1 0.3 --p-t2i 0.5 --p-edit 0.38 --edit-op-p 0.1,0.15,0.3,0.15,0.1,0.1,0.1 \
  --init model/weights/torch/ckpt.pt --seed 2026 --out "$OUT/v2" 2>&1 | grep -v -i warn
rm -f "$OUT/v2/ckpt.pt"   # the resumable checkpoint (optimizer state, fp32) is too big to bring back; ema16.pt is what export takes
ls -la "$OUT/v2"
