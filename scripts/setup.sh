#!/usr/bin/env bash
# Installs what the server and its tests need on a fresh Debian 12 machine with Node 20:
# npm dependencies (onnxruntime-node without its CUDA download) and Debian packages.
set -euo pipefail
cd "$(dirname "$0")/.."
export ONNXRUNTIME_NODE_INSTALL=skip

if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "== npm ci"
  npm ci --no-audit --no-fund
fi

# Debian packages the tests use: python3-requests runs the seed's Python example as it is written;
# chromium renders the /docs page (driven by playwright-core, which cannot download its own browser here).
need=()
/usr/bin/python3 -c 'import requests' 2>/dev/null || need+=(python3-requests)
[ -x /usr/bin/chromium ] || need+=(chromium)
# python3-numpy and python3-pil run the bundled model's evaluation sample (model/eval.py) against the server.
/usr/bin/python3 -c 'import numpy' 2>/dev/null || need+=(python3-numpy)
/usr/bin/python3 -c 'import PIL' 2>/dev/null || need+=(python3-pil)
# The scale-out tests start a real Redis (BullMQ) and a real PostgreSQL 15 on free ports in temporary directories.
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
[ -x /usr/lib/postgresql/15/bin/postgres ] || need+=(postgresql-15)
if [ "${#need[@]}" -gt 0 ]; then
  if [ "$(id -u)" = "0" ]; then
    echo "== apt-get install ${need[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  else
    echo "warning: missing Debian packages ${need[*]} (run as root to install them)" >&2
  fi
fi
