#!/usr/bin/env bash
# The whole test suite, from a fresh clone: installs what the tests need, type-checks, runs every test.
# Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh

echo "== typecheck"
node_modules/.bin/tsc --noEmit -p tsconfig.json

echo "== tests"
mapfile -t files < <(find src test -name '*.test.ts' -not -path '*/node_modules/*' | sort)
# One file at a time: the suites start servers and run the model on 2 cores.
# A test (or a whole file: the runner applies the limit to each file too) that hangs fails after 20 minutes
# instead of holding the run until CI gives up on it.
node --import tsx --test --test-concurrency=1 --test-timeout=1200000 --test-reporter=spec "${files[@]}"
