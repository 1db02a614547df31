#!/usr/bin/env bash
# roster in about a minute: builds roster and the vendor sandbox (fake Motive, DriveKit,
# Damoov and Rocket.Chat), then tells the story of examples/people.json through the
# public command line only: a plan, a first pass, a pass with nothing to do, a change in
# the source, a person who leaves (deactivated, not deleted) and comes back (same
# account, this time picked up by the daemon, with /metrics sampled), `explain` and
# `history`.
#
# Everything runs on a copy in target/demo/ (the files in examples/ are never changed)
# on free loopback ports. Every step checks its exit code and what the vendors and the
# audit history say, and the script stops with a message at the first surprise. Needs
# bash and coreutils; no curl or jq (HTTP goes through bash's /dev/tcp).
set -euo pipefail
cd "$(dirname "$0")/.."

target="${CARGO_TARGET_DIR:-target}"
bin="$target/debug"
work="$target/demo"
sandbox="" daemon=""

if [ -t 1 ]; then bold=$'\e[1m' dim=$'\e[2m' off=$'\e[0m'; else bold="" dim="" off=""; fi
step() { printf '\n%s== %s%s\n' "$bold" "$*" "$off"; }
say() { printf '%s\n' "$*"; }
die() {
  printf 'demo.sh: FAILED: %s\n' "$*" >&2
  exit 1
}

cleanup() {
  local code=$?
  for pid in $daemon $sandbox; do
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  if [ "$code" -ne 0 ]; then
    printf 'demo.sh: stopped (exit %s); logs and state are in %s/\n' "$code" "$work" >&2
  fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Polls (every 0.1 s, at most $1 seconds) until the rest of the line succeeds.
wait_until() {
  local deadline=$((SECONDS + $1)) what=$2
  shift 2
  until "$@"; do
    [ "$SECONDS" -lt "$deadline" ] || die "timed out waiting for $what"
    sleep 0.1
  done
}

# HTTP/1.0 GET through bash's /dev/tcp: prints the body; fails unless the status is 200.
http_get() {
  local addr=$1 path=$2 reply
  shift 2
  reply=$(
    exec 2>/dev/null
    exec 3<>"/dev/tcp/${addr%:*}/${addr##*:}" || exit 1
    {
      printf 'GET %s HTTP/1.0\r\nHost: %s\r\n' "$path" "$addr"
      if [ $# -gt 0 ]; then printf '%s\r\n' "$@"; fi
      printf '\r\n'
    } >&3
    timeout 10 cat <&3
  ) || return 1
  case "${reply%%$'\r'*}" in
    "HTTP/1."[01]" 200 "*) printf '%s\n' "${reply#*$'\r\n\r\n'}" ;;
    *) return 1 ;;
  esac
}

# A loopback port nobody listens on (roster exits 2 with a clear message if it is taken
# by the time the daemon binds it).
free_port() {
  local port
  for _ in $(seq 1 100); do
    port=$((20000 + RANDOM % 40000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "$port"
      return 0
    fi
  done
  return 1
}

# `roster ARGS...` with the demo's config; stops the demo unless it exits with $1.
expect() {
  local want=$1 code=0
  shift
  printf '%s$ roster %s%s\n' "$dim" "$*" "$off"
  "$bin/roster" --config "$work/roster.toml" "$@" || code=$?
  [ "$code" -eq "$want" ] || die "\`roster $*\` exited $code, expected $want"
}

# Audit history since $1 (RFC 3339) as "vendor op outcome" lines.
history_since() {
  "$bin/roster" --config "$work/roster.toml" history --since "$1" --json |
    tr -d ' ",' | awk -F: '$1=="vendor"{v=$2} $1=="op"{o=$2} $1=="outcome"{print v, o, $2}' |
    sort
}

# Write calls made since $1 must be exactly $2 (sorted "vendor op outcome" lines).
expect_writes() {
  local got
  got=$(history_since "$1") || die "roster history failed"
  [ "$got" = "$2" ] || die "$(printf 'write calls since %s:\n%s\nexpected:\n%s' "$1" "$got" "$2")"
}

now() { date -u +%Y-%m-%dT%H:%M:%S.%NZ; }

# Motive's own view of a person's account: "id N, status S" (its lookup by external id).
motive_account() {
  local body id status
  body=$(http_get "$addr" "/motive/v1/users/lookup_by_external_id?external_id=$1&integration_name=roster" \
    "X-Api-Key: sandbox-motive-key") || die "Motive has no account for $1"
  # The user's own id is the last "id" in its (key-sorted) JSON; external ids come first.
  id=$(grep -o '"id":[0-9]*' <<<"$body" | tail -n 1 | cut -d: -f2)
  status=$(grep -o '"status":"[a-z]*"' <<<"$body" | cut -d'"' -f4)
  [ -n "$id" ] && [ -n "$status" ] || die "unexpected Motive reply for $1: $body"
  echo "id $id, status $status"
}

step "Building roster and the vendor sandbox (cargo build)"
cargo build --quiet --workspace --bins
rm -rf "$work"
mkdir -p "$work"

: >"$work/sandbox.log"
"$bin/roster-sandbox" 127.0.0.1:0 \
  --drivekit-driver E1001 --drivekit-driver E1002 --drivekit-driver E1005 \
  2>"$work/sandbox.log" &
sandbox=$!
sandbox_up() {
  kill -0 "$sandbox" 2>/dev/null || die "the sandbox did not start: $(cat "$work/sandbox.log")"
  grep -q '^roster-sandbox listening on ' "$work/sandbox.log"
}
wait_until 30 "the sandbox to listen" sandbox_up
addr=$(sed -n 's|^roster-sandbox listening on http://||p' "$work/sandbox.log")
port=$(free_port) || die "no free loopback port for the daemon"

# The example config and source, pointed at this sandbox and port.
sed -e "s|127.0.0.1:8900|$addr|g" -e "s|127.0.0.1:9464|127.0.0.1:$port|g" \
  examples/roster.toml >"$work/roster.toml"
cp examples/people.json "$work/people.json"
people="$work/people.json"

step "The setup"
say "The sandbox serves fake Motive, DriveKit, Damoov (Telematics) and Rocket.Chat APIs"
say "on $addr. Three drivers (E1001, E1002, E1005) have signed in to the DriveKit app."
say "The config is examples/roster.toml (copied to $work/roster.toml): the fleet vendors"
say "take the people in group \"drivers\"; everyone gets a chat account. The source is"
say "examples/people.json: Ada (E1001) and Grace (E1002) drive, Alan (E1003) works in the"
say "office, Katherine (E1004) is inactive, Edsger (E1005) has ELD settings Motive refuses,"
say "and Barbara's record (E1006) has a malformed email."
say "${dim}Below, \`roster\` is $bin/roster --config $work/roster.toml.$off"

step "1. What would a first pass do? (plan: computes, pushes nothing)"
expect 0 plan

step "2. The first pass"
mark=$(now)
expect 0 reconcile
writes=$(history_since "$mark") || die "roster history failed"
for vendor in chat drivekit motive telematics; do
  grep -q "^$vendor [a-z]* ok$" <<<"$writes" || die "no write call reached $vendor: $writes"
done
say "DriveKit drivers cannot be created: roster found the three who signed in and linked them"
say "(adopted). Edsger is skipped at Motive only, with the reason; Barbara's record is"
say "reported and left out. Katherine is inactive, so no account was made for her."
ada=$(motive_account E1001)
say "Motive now has Ada: $ada"

step "3. Nothing changed: a second pass makes no write call"
mark=$(now)
expect 0 reconcile
expect_writes "$mark" ""
say "(roster history --since: no write call at any vendor)"

step "4. Grace's last name changes in the source"
sed -i 's/"last_name": "Hopper"/"last_name": "Murray Hopper"/' "$people"
grep -q '"Murray Hopper"' "$people" || die "could not edit $people"
mark=$(now)
expect 0 reconcile
expect_writes "$mark" "$(printf '%s\n' 'chat update ok' 'drivekit update ok' 'motive update ok' 'telematics update ok')"
say "One update per vendor, carrying only the changed field:"
expect 0 history --since "$mark"

step "5. Ada leaves: her record is removed from the source"
cp "$people" "$work/people-with-ada.json"
sed -i '/"id": "E1001"/,/},/d' "$people"
! grep -q '"E1001"' "$people" || die "could not remove E1001 from $people"
mark=$(now)
expect 0 reconcile
expect_writes "$mark" "$(printf '%s\n' 'chat deactivate ok' 'drivekit deactivate ok' 'motive deactivate ok' 'telematics deactivate ok')"
left=$(motive_account E1001)
[ "${left%%,*}" = "${ada%%,*}" ] && [ "${left##* }" = deactivated ] ||
  die "Motive: Ada's account is \"$left\", expected ${ada%%,*}, status deactivated"
say "Deactivated at every vendor, not deleted: Motive still has Ada's account, $left."

step "6. Ada comes back; this time the daemon (roster run) picks it up"
cp "$work/people-with-ada.json" "$people"
say "${dim}\$ ROSTER__LOG_LEVEL=info roster run    (logs in $work/daemon.log)$off"
mark=$(now)
ROSTER__LOG_LEVEL=info "$bin/roster" --config "$work/roster.toml" run 2>"$work/daemon.log" &
daemon=$!
daemon_ready() {
  kill -0 "$daemon" 2>/dev/null || die "the daemon stopped: $(cat "$work/daemon.log")"
  [ "$(http_get "127.0.0.1:$port" /readyz)" = ready ]
}
wait_until 30 "the daemon's /readyz" daemon_ready
say "/readyz answers \"ready\". Passes run on the schedule (every 15 minutes); SIGUSR1 (or"
say "POST /trigger with a token) asks for one now:"
say "${dim}\$ kill -USR1 $daemon$off"
kill -USR1 "$daemon"
pass_done() {
  local metrics
  kill -0 "$daemon" 2>/dev/null || die "the daemon stopped: $(cat "$work/daemon.log")"
  metrics=$(http_get "127.0.0.1:$port" /metrics) || return 1
  grep -q '^roster_passes_total{outcome="ok"} [1-9]' <<<"$metrics"
}
wait_until 60 "a pass in the daemon" pass_done
say "A sample of /metrics after the pass:"
metrics=$(http_get "127.0.0.1:$port" /metrics) || die "GET /metrics failed"
grep -E '^roster_(operations_total|passes_total|pass_duration_seconds_(sum|count)|source_people|source_invalid_records|safety_refusals_total)' <<<"$metrics" |
  sort | sed 's/^/  /'
say "${dim}\$ kill -TERM $daemon$off"
kill -TERM "$daemon"
code=0
wait "$daemon" || code=$?
daemon=""
[ "$code" -eq 0 ] || die "the daemon exited $code after SIGTERM: $(cat "$work/daemon.log")"
say "The daemon's log (the lines that matter; level info):"
grep -E 'WARN|ERROR|Daemon started|received|Pass complete|Stopped' "$work/daemon.log" |
  sed -E 's/^[0-9T:.-]+Z +//; s/ roster::[a-z_:]+://; s/^/  /'
expect_writes "$mark" "$(printf '%s\n' 'chat reactivate ok' 'drivekit reactivate ok' 'motive reactivate ok' 'telematics reactivate ok')"
back=$(motive_account E1001)
[ "$back" = "${ada%%,*}, status active" ] ||
  die "Motive: Ada's account is \"$back\", expected ${ada%%,*}, status active"
say "Reactivated everywhere, with the same accounts: Motive has Ada back as $back."

step "7. Why? roster explain (reads the source and the store; calls no vendor)"
expect 0 explain E1001

step "8. Everything roster did to Ada, from the audit history"
expect 0 history --person E1001

step "Done"
say "The store and the files are in $work/ (the sandbox has stopped). Try:"
say "  $bin/roster --config $work/roster.toml status"
say "  $bin/roster --config $work/roster.toml explain E1005"
