#!/usr/bin/env bash
# Two builds of Postmesh, each side by side with Dovecot, alternating: this checkout ("new") and
# another built checkout ("old", e.g. `git worktree add ../base <commit>` then npm ci and
# npm run build there). Each run is a full side-by-side.sh run with a fresh WORK directory, so
# both builds see the same machine within minutes, and the ratio to Dovecot of the same run
# cancels the machine's own drift.
#
# Usage: tools/bench/imap-peer/bin/ab-builds.sh OLD_CHECKOUT [ROUNDS] [-- side-by-side options…]
#   default options: --messages 300 --stress-messages 50 --seconds 10 --stress-seconds 10 --clients 10
# Env: as side-by-side.sh (PEER_*_PORT, NUSERS, …); OUT (default a new mktemp -d) keeps each run's
#      log as OUT/<new|old>-<round>.log. Prints each run's ratio lines, then where the logs are.
set -euo pipefail
new=$(cd "$(dirname "$0")/../../../.." && pwd)
old=${1:?usage: ab-builds.sh OLD_CHECKOUT [ROUNDS] [-- options]}
old=$(cd "$old" && pwd)
shift
rounds=2
if [ $# -gt 0 ] && [ "$1" != "--" ]; then rounds=$1; shift; fi
[ "${1:-}" = "--" ] && shift
options=("$@")
[ ${#options[@]} -gt 0 ] || options=(--messages 300 --stress-messages 50 --seconds 10 --stress-seconds 10 --clients 10)
for checkout in "$new" "$old"; do
  [ -x "$checkout/tools/bench/imap-peer/bin/side-by-side.sh" ] || { echo "ab-builds: no side-by-side.sh in $checkout" >&2; exit 2; }
  [ -d "$checkout/services/storage-imap/dist" ] || { echo "ab-builds: $checkout is not built (npm run build)" >&2; exit 2; }
done
OUT=${OUT:-$(mktemp -d /tmp/postmesh-ab.XXXXXX)}
mkdir -p "$OUT"
for round in $(seq 1 "$rounds"); do
  for side in new old; do
    checkout=$new
    [ "$side" = old ] && checkout=$old
    work=$(mktemp -d /tmp/postmesh-ab-work.XXXXXX)
    chmod 755 "$work"
    printf 'ab-builds | round %s %s: %s at %s (load %s)\n' "$round" "$side" "$checkout" \
      "$(git -C "$checkout" log --oneline -1 | cut -c1-60)" "$(cut -d' ' -f1-3 /proc/loadavg)" >&2
    status=0
    WORK=$work "$checkout/tools/bench/imap-peer/bin/side-by-side.sh" "${options[@]}" >"$OUT/$side-$round.out" 2>"$OUT/$side-$round.log" || status=$?
    rm -rf "$work"
    if [ "$status" -ne 0 ]; then
      echo "ab-builds: round $round $side failed (exit $status), see $OUT/$side-$round.log" >&2
      exit "$status"
    fi
    grep -E '= [0-9.]+×' "$OUT/$side-$round.log" | sed "s/^bench-imap-peer | /ab-builds | round $round $side: /" >&2
  done
done
echo "ab-builds | logs in $OUT" >&2
