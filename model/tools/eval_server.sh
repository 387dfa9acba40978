#!/usr/bin/env bash
# model/eval.py through a server started on a given model directory (the shipped weights by default):
#   bash model/tools/eval_server.sh [MODEL_DIR] [eval.py arguments...]
# e.g. bash model/tools/eval_server.sh /tmp/candidate --sample 12 --neg-seeds 5 --typed-sample 12 --sharp-sample 6
# Starts `node --import tsx src/main.ts` on a free port with a throw-away DATA_DIR and key, waits for /healthz,
# runs the evaluation, stops the server. The exit status is eval.py's.
set -euo pipefail
cd "$(dirname "$0")/../.."
MODEL_DIR="${1:-model/weights}"
shift || true
PORT="$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
DATA="$(mktemp -d)"
KEY="eval-$RANDOM$RANDOM"
PORT="$PORT" DATA_DIR="$DATA" API_KEYS="$KEY" BUILTIN_MODEL_DIR="$MODEL_DIR" LOG_LEVEL=warn \
  node --import tsx src/main.ts >"$DATA/server.log" 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true; wait $SERVER 2>/dev/null || true; rm -rf "$DATA"' EXIT
for _ in $(seq 1 240); do
  if curl -fsS "http://127.0.0.1:$PORT/healthz" 2>/dev/null | grep -q '"status":"ok"'; then break; fi
  if ! kill -0 $SERVER 2>/dev/null; then cat "$DATA/server.log" >&2; exit 1; fi
  sleep 0.5
done
/usr/bin/python3 model/eval.py --base-url "http://127.0.0.1:$PORT" --key "$KEY" "$@"
