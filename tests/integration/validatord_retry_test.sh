#!/usr/bin/env bash
# fedmarket-validatord with the marketplace down: --once retries with
# backoff as it says, then exits 1 naming the address and the setting;
# without --once it keeps waiting with growing pauses (never a busy loop)
# and stops cleanly on SIGTERM. Needs no stack: the port is closed.
# Prints TAP.
set -uo pipefail
top=${FM_TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
bin=${FM_BIN:-$top/bin}
# shellcheck source=fed_tap.sh
. "$(dirname "$0")/fed_tap.sh"

# a port nothing listens on: one of this run's, never bound by a suite
port=$(( ${FM_PORT_BASE:-25380} + 39 ))
url=http://127.0.0.1:$port
printf 'pw\n' >"$T/pw"
"$bin/fedmarket-admin" keys new --light --password-file "$T/pw" \
  --keystore-dir "$T/keys" --json >/dev/null
cat >"$T/down.conf" <<EOF
taskd_url = $url
assignd_url = $url
resultd_url = $url
validationd_url = $url
storage_url = file://$T/store
keystore_dir = $T/keys
password_file = $T/pw
work_dir = $T/work
EOF

start=$(date +%s)
"$bin/fedmarket-validatord" --once --config "$T/down.conf" >"$T/out" 2>"$T/err"
rc=$? took=$(( $(date +%s) - start ))
ok "--once with the marketplace down exits 1 (exit $rc)" test "$rc" -eq 1
ok "--once gives up within 30 s (took $took s)" test "$took" -le 30
ok "--once tried more than once, with growing pauses" \
  grep -q "next try in 1 s" "$T/err"
ok "... 1, 2, 4 and 8 s" bash -c "grep -c 'next try in [1248] s' '$T/err' | grep -qx 4"
ok "--once does not claim to retry and then stop (no 'retrying')" \
  bash -c "! grep -q 'retrying' '$T/err'"
ok "the last message names the address and the setting" \
  bash -c "tail -3 '$T/err' | grep 'no answer after 5 tries' | grep -F '$url' | grep -q taskd_url"
ok "and a hint on what to check" grep -q "hint: is the marketplace up" "$T/err"

# the daemon keeps waiting with growing pauses, and stops on SIGTERM
"$bin/fedmarket-validatord" --config "$T/down.conf" 2>"$T/daemon.err" &
pid=$!
sleep 5
ok "without --once it keeps waiting" kill -0 "$pid"
tries=$(grep -c "waiting for the marketplace" "$T/daemon.err")
ok "... with growing pauses, not in a loop ($tries tries in 5 s)" \
  test "$tries" -ge 2 -a "$tries" -le 4
ok "... saying what it waits for" \
  grep -q "waiting for the marketplace (taskd_url): GET $url" "$T/daemon.err"
kill -TERM "$pid"
wait "$pid"
rc=$?
ok "SIGTERM while waiting: exit 0 (exit $rc)" test "$rc" -eq 0
ok "... and it says it stopped" bash -c "tail -1 '$T/daemon.err' | grep -q stopped"
echo "1..$n"
