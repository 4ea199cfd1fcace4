#!/usr/bin/env bash
# IMAP side by side, one run on one machine: Dovecot (../shared/peers, Debian's package) and the
# Postmesh stack (`npm start` with its own data directory), the same users and the same workload.
#
# Usage: tools/bench/imap-peer/bin/side-by-side.sh [bench options…]
#   e.g. side-by-side.sh --messages 10000 --clients 10 --seconds 30 --stress-seconds 20 --json
# Env: WORK (scratch dir, default a new mktemp -d; reused when given, so a second run skips the
#      fill), PEERS (../shared/peers beside the repo), PEER_IMAP_PORT (10143), PEER_SMTP_PORT
#      (10025), PEER_LMTP_PORT (10024), KEEP=1 (leave both running afterwards),
#      POSTMESH_CPU_PROFILE_DIR=DIR (V8 CPU profiles of imap and storage during each Postmesh phase,
#      summarised by tools/bench/ingest/profile-summary.mjs). The stack's ports follow its own
#      POSTMESH_*_PORT variables, so two runs on one machine can use different ports.
#      The stack runs its shipped shape, imap inside storage's process (storage-imap, ADR 0010);
#      POSTMESH_STACK_IMAP_AT_STORAGE=false runs the gRPC shape (separate imap and storage);
#      POSTMESH_STACK_STORAGE_REPLICAS=N runs N storage-imap replicas behind imap-proxy (each
#      counted on its own in the CPU figures, storage-imap-1…N; the users' split is printed).
#      The database is the stack's default, SQLite in storage's process (ADR 0011);
#      POSTMESH_STACK_DB=ferretdb runs FerretDB (its CPU then counted in the stack's tree).
# Each phase reports the CPU time of every process of both servers per command (--cpu).
# Needs root (Postfix and Dovecot masters), the workspace built (npm run build) and .bin/ tools.
set -euo pipefail
root=$(cd "$(dirname "$0")/../../../.." && pwd)
cd "$root"
if [ -z "${PEERS:-}" ]; then
  # ../shared/peers beside the checkout (a git worktree may sit one level deeper)
  for candidate in "$root/../shared/peers" "$root/../../shared/peers"; do
    [ -x "$candidate/setup-postfix-dovecot.sh" ] && PEERS=$candidate && break
  done
fi
[ -n "${PEERS:-}" ] || { echo "side-by-side: ../shared/peers not found; set PEERS" >&2; exit 2; }
WORK=${WORK:-$(mktemp -d /tmp/postmesh-imap-peer.XXXXXX)}
PEER_IMAP_PORT=${PEER_IMAP_PORT:-10143}
export SMTP_PORT=${PEER_SMTP_PORT:-10025} IMAP_PORT=$PEER_IMAP_PORT LMTP_PORT=${PEER_LMTP_PORT:-10024} NUSERS=${NUSERS:-10}
say() { printf 'side-by-side | %s\n' "$*" >&2; }

password=$(cat "$WORK/password" 2>/dev/null || true)
if [ -z "$password" ]; then
  password="Bench-$(head -c 12 /dev/urandom | base64 | tr -dc 'A-Za-z0-9')-9"
  mkdir -p "$WORK" && printf '%s' "$password" >"$WORK/password"
fi

stack_pid=
cleanup() {
  [ "${KEEP:-0}" = 1 ] && { say "KEEP=1: both left running (stack pid $stack_pid, work $WORK)"; return; }
  if [ -n "$stack_pid" ]; then
    kill -INT "$stack_pid" 2>/dev/null || true
    for _ in $(seq 1 60); do kill -0 "$stack_pid" 2>/dev/null || break; sleep 1; done
  fi
  "$PEERS/setup-postfix-dovecot.sh" "$WORK/peers" stop >/dev/null 2>&1 || true
}
trap cleanup EXIT

say "peers: Dovecot on 127.0.0.1:$PEER_IMAP_PORT (config and mail under $WORK/peers)"
"$PEERS/setup-postfix-dovecot.sh" "$WORK/peers" start >&2

say "postmesh: starting the stack with data in $WORK/postmesh"
# No content filter (the IMAP workload does not receive mail over SMTP).
profile_hook=
[ -n "${POSTMESH_CPU_PROFILE_DIR:-}" ] && mkdir -p "$POSTMESH_CPU_PROFILE_DIR" &&
  profile_hook="--import $root/tools/bench/imap-peer/bin/cpu-profile-on-signal.mjs"
POSTMESH_DATA_DIR="$WORK/postmesh" POSTMESH_DEV_PASSWORD="$password" POSTMESH_SKIP_BUILD=1 \
  NODE_OPTIONS="${NODE_OPTIONS:-} $profile_hook" \
  POSTMESH_STACK_RSPAMD="${POSTMESH_STACK_RSPAMD:-false}" node tools/stack/bin/postmesh-stack.mjs start >"$WORK/stack.log" 2>&1 &
stack_pid=$!
for _ in $(seq 1 180); do
  grep -q 'Postmesh is running' "$WORK/stack.log" 2>/dev/null && break
  kill -0 "$stack_pid" 2>/dev/null || { say "the stack exited; see $WORK/stack.log"; tail -20 "$WORK/stack.log" >&2; exit 1; }
  sleep 1
done
grep -q 'Postmesh is running' "$WORK/stack.log" || { say "the stack did not start in 180 s; see $WORK/stack.log"; exit 1; }
api=http://127.0.0.1:${POSTMESH_HTTP_PORT:-8080}
imap_port=${POSTMESH_IMAP_PORT:-1143}

# Users bench1..bench5@example.test through the admin API, as an administrator would.
jar="$WORK/cookies"
for _ in $(seq 1 60); do
  csrf=$(curl -sf -c "$jar" -H 'content-type: application/json' \
    -d "{\"email\":\"admin@example.test\",\"password\":\"$password\"}" "$api/api/v1/auth/login" |
    python3 -c 'import json,sys; print(json.load(sys.stdin).get("csrfToken",""))' 2>/dev/null) && [ -n "$csrf" ] && break
  sleep 1
done
[ -n "${csrf:-}" ] || { say "could not sign in to $api as admin@example.test"; exit 1; }
for i in 1 2 3 4 5; do
  code=$(curl -s -o /dev/null -w '%{http_code}' -b "$jar" -H 'content-type: application/json' -H "x-csrf-token: $csrf" \
    -d "{\"address\":\"bench$i@example.test\",\"password\":\"$password\"}" "$api/api/v1/users")
  case "$code" in 201 | 409) ;; *) say "creating bench$i@example.test: HTTP $code"; exit 1 ;; esac
done

if grep -q 'storage-imap replicas behind imap-proxy' "$WORK/stack.log"; then
  shape="${POSTMESH_STACK_STORAGE_REPLICAS} storage-imap replicas behind imap-proxy ($(grep -o 'partitions: .*' "$WORK/stack.log" | head -1))"
elif grep -q 'served by storage-imap' "$WORK/stack.log"; then
  shape='storage-imap (imap at the owner)'
else
  shape='imap + storage over gRPC'
fi
# The database (POSTMESH_STACK_DB): the SQLite file in storage's process, or FerretDB.
database=$(grep -o 'Database: [^(]*' "$WORK/stack.log" | head -1 | sed 's/^Database: //; s/ *$//')
say "postmesh shape: $shape; database: ${database:-unknown}"
say "running: postmesh on 127.0.0.1:$imap_port, dovecot on 127.0.0.1:$PEER_IMAP_PORT (load: $(cut -d' ' -f1-3 /proc/loadavg))"
# CPU accounting: the stack's process tree and the Dovecot master's (see src/cpu.ts).
measure=(--cpu "postmesh=$stack_pid")
dovecot_pid=$(tr -dc 0-9 <"$WORK/peers/dovecot/run/master.pid" 2>/dev/null || true)
[ -n "$dovecot_pid" ] && measure+=(--cpu "dovecot=$dovecot_pid")
if [ -n "$profile_hook" ]; then
  for service in imap storage storage-imap; do
    for pid in $(pgrep -f "$root/services/$service/dist/main.js" || true); do
      measure+=(--profile "postmesh=$pid")
    done
  done
fi
node tools/bench/imap-peer/dist/main.js "${measure[@]}" \
  --target "postmesh,127.0.0.1:$imap_port,bench{i}@example.test,$password" \
  --target "dovecot,127.0.0.1:$PEER_IMAP_PORT,testuser{i},pass" "$@"
# Several replicas: which replica served whom (distinct users logged in, from each replica's log)
# how many IMAP commands each ran (postmesh_imap_commands_total since the start) and where their
# Mailstore calls went (in-process: a user it owns; gRPC: another replica's user).
if [ "${POSTMESH_STACK_STORAGE_REPLICAS:-1}" -gt 1 ]; then
  python3 - "$WORK/postmesh" <<'PY' >&2 || true
import json, re, sys, urllib.request
data = sys.argv[1]
stack = json.load(open(f"{data}/stack.json"))
for o in stack["ops"]:
    if not o["process"].startswith("storage-imap-"):
        continue
    users = set()
    for line in open(f"{data}/logs/{o['process']}.log", encoding="utf-8", errors="replace"):
        if '"msg":"logged in"' in line:
            users.add(json.loads(line).get("user"))
    metrics = urllib.request.urlopen(o["metrics"], timeout=5).read().decode()
    commands = sum(float(v) for v in re.findall(r"^postmesh_imap_commands_total(?:\{[^}]*\})? (\S+)$", metrics, re.M))
    owned = stack.get("partitions", {}).get(o["process"], "?")
    paths = {p: int(float(v)) for p, v in re.findall(r'^postmesh_imap_storage_calls_total\{[^}]*path="([^"]+)"[^}]*\} (\S+)$', metrics, re.M)}
    print(f"side-by-side | {o['process']}: {owned} partitions, {len(users)} users logged in, {int(commands)} IMAP commands, "
          f"Mailstore calls in-process {paths.get('in-process', 0)} / gRPC {paths.get('grpc', 0)}")
PY
fi
say "done (load: $(cut -d' ' -f1-3 /proc/loadavg))"
