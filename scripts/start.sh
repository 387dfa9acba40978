#!/usr/bin/env bash
# npm start: installs the npm dependencies on a fresh clone, then runs the server (builtin engine by default).
set -euo pipefail
cd "$(dirname "$0")/.."
export ONNXRUNTIME_NODE_INSTALL=skip
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund >&2
fi
# node --import tsx runs the server in this very process (the tsx binary would fork a child), so the SIGTERM
# npm or a supervisor sends reaches the server, which drains before exiting; SIGKILL leaves nothing behind.
exec node --import tsx src/main.ts
