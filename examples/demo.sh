#!/usr/bin/env bash
# Builds roster and the vendor sandbox, starts the sandbox, and runs a real reconcile of
# examples/people.json against it, then a second pass (which makes no write calls).
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --quiet --workspace --bins
bin="${CARGO_TARGET_DIR:-target}/debug"
rm -rf examples/state

"$bin/roster-sandbox" 127.0.0.1:8900 &
sandbox=$!
trap 'kill "$sandbox" 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  (echo >/dev/tcp/127.0.0.1/8900) 2>/dev/null && break
  sleep 0.1
done

roster() { "$bin/roster" --config examples/roster.toml "$@"; }

echo "== roster plan (what would happen)"
roster plan
echo
echo "== roster reconcile (first pass)"
code=0; roster reconcile || code=$?
echo "exit code: $code"
echo
echo "== roster reconcile --json (second pass: nothing changed, no write calls)"
roster reconcile --json
echo
echo "== roster status"
roster status
