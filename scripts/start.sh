#!/usr/bin/env bash
# npm start: installs the npm dependencies on a fresh clone, then runs the server (builtin engine by default).
set -euo pipefail
cd "$(dirname "$0")/.."
export ONNXRUNTIME_NODE_INSTALL=skip
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund >&2
fi
exec node_modules/.bin/tsx src/main.ts
