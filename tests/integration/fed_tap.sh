# Sourced by the fed_*_test.sh suites: TAP output and a scratch folder.
# Defines T (removed on exit), n (tests so far) and ok.
T=$(mktemp -d "/tmp/$(basename "$0" .sh).XXXXXX")
trap 'rm -rf "$T"' EXIT
n=0

ok() { # description command...: prints "ok N" or "not ok N" and the log
  local d=$1; shift
  n=$((n + 1))
  if "$@" >"$T/check.log" 2>&1; then
    echo "ok $n - $d"
  else
    echo "not ok $n - $d"
    sed 's/^/# /' "$T/check.log" | tail -10
  fi
}
