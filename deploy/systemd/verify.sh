#!/usr/bin/env bash
# Checks the systemd units in this directory with systemd's own parser:
#   - `systemd-analyze verify` on roster.service, roster-reconcile.service and
#     roster-reconcile.timer, failing on a non-zero status or on any message about them
#     (unknown keys, unparsable values, bad specifiers, missing units, ...);
#   - `systemd-sysusers` on roster.sysusers.conf, into a scratch root;
#   - TimeoutStopSec above roster's default shutdown_grace_secs (30).
# It also prints `systemd-analyze security` exposure scores (information, not a gate).
#
# Usage: deploy/systemd/verify.sh [ROSTER_BINARY]
# `verify` refuses an ExecStart= whose program does not exist, so the units are checked
# from a scratch copy with /usr/bin/roster replaced by ROSTER_BINARY (default:
# target/debug/roster or target/release/roster if built, else /bin/true; verify only
# needs an executable file there).
# Needs systemd-analyze and systemd-sysusers (Debian: apt-get install systemd); does not
# need systemd to be running.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)

units=(roster.service roster-reconcile.service roster-reconcile.timer)
default_grace=30

bin=${1:-}
if [ -z "$bin" ]; then
  for candidate in "$repo/target/debug/roster" "$repo/target/release/roster" /bin/true; do
    if [ -x "$candidate" ]; then bin=$candidate; break; fi
  done
fi
bin=$(realpath "$bin")
[ -x "$bin" ] || { echo "verify.sh: $bin is not an executable file" >&2; exit 1; }

for tool in systemd-analyze systemd-sysusers; do
  command -v "$tool" >/dev/null || {
    echo "verify.sh: $tool not found (Debian: apt-get install -y systemd)" >&2
    exit 1
  }
done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failed=0
fail() { echo "FAIL: $*"; failed=1; }

# Every ExecStart= must run /usr/bin/roster, or the rewrite below would silently check
# something else.
for unit in "${units[@]}"; do
  while IFS= read -r line; do
    case "$line" in
      ExecStart=/usr/bin/roster\ *) ;;
      *) fail "$unit: ExecStart= does not run /usr/bin/roster: $line" ;;
    esac
  done < <(grep '^ExecStart=' "$here/$unit" || true)
  sed "s#^ExecStart=/usr/bin/roster #ExecStart=$bin #" "$here/$unit" > "$work/$unit"
done

echo "== systemd-analyze verify (ExecStart program: $bin)"
set +e
out=$(cd "$work" && systemd-analyze verify --man=no "${units[@]/#/./}" 2>&1)
status=$?
set -e
[ -z "$out" ] || printf '%s\n' "$out"
[ "$status" -eq 0 ] || fail "systemd-analyze verify exited $status"
# verify reports problems as warnings and still exits 0; any line about our units counts.
pattern="$(printf '%s\n' "${units[@]}" "$work" | sed 's/[.[\*^$]/\\&/g' | paste -sd'|')"
if printf '%s\n' "$out" | grep -Eq "$pattern"; then
  fail "systemd-analyze verify reported problems in the units (above)"
fi
[ "$failed" -eq 0 ] && echo "ok: ${units[*]}"

echo "== systemd-sysusers roster.sysusers.conf"
mkdir -p "$work/root/etc"
out=$(systemd-sysusers --root="$work/root" "$here/roster.sysusers.conf" 2>&1) || fail "systemd-sysusers exited $?"
printf '%s\n' "$out"
if printf '%s\n' "$out" | grep -Eiq 'ignoring|invalid|failed|error'; then
  fail "systemd-sysusers complained about roster.sysusers.conf"
fi
grep -q "^roster:x:[0-9]*:[0-9]*:.*:/var/lib/roster:" "$work/root/etc/passwd" 2>/dev/null ||
  fail "roster.sysusers.conf did not create the user roster with home /var/lib/roster"

echo "== TimeoutStopSec > shutdown_grace_secs ($default_grace)"
for unit in roster.service roster-reconcile.service; do
  value=$(sed -n 's/^TimeoutStopSec=\([0-9]*\)s\{0,1\}$/\1/p' "$here/$unit" | tail -n 1)
  if [ -z "$value" ] || [ "$value" -le "$default_grace" ]; then
    fail "$unit: TimeoutStopSec must be a number of seconds above $default_grace (got '${value}')"
  else
    echo "ok: $unit TimeoutStopSec=$value"
  fi
done

echo "== systemd-analyze security (information only)"
for unit in roster.service roster-reconcile.service; do
  (cd "$work" && systemd-analyze security --offline=true --no-pager "./$unit" 2>&1 | tail -n 1) ||
    echo "($unit: systemd-analyze security unavailable)"
done

if [ "$failed" -ne 0 ]; then
  echo "verify.sh: FAILED"
  exit 1
fi
echo "verify.sh: all checks passed"
