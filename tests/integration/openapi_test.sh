#!/usr/bin/env bash
# schema/openapi.yaml and the services' route tables describe the same
# API, both ways: every route is documented under its service, and every
# documented operation is served.
set -u
top=${FM_TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
bin=${FM_BIN:-$top/bin}
doc=$top/schema/openapi.yaml
n=0 failed=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
bad() { n=$((n + 1)); failed=1; echo "not ok $n - $1"; }

# "service METHOD /path" lines from the document; operations without
# x-service are served by every service.
documented=$(awk '
  function flush() { if (m != "") print m, p, s; m = "" }
  /^  \/[^:]*:$/ { flush(); path = substr($1, 1, length($1) - 1); next }
  /^    (get|post|put|patch|delete):$/ {
    flush(); m = toupper(substr($1, 1, length($1) - 1)); p = path; s = "*"; next }
  /^      x-service: / { s = $2; next }
  /^[^ ]/ { flush(); path = "" }
  END { flush() }
' "$doc" | sed -n '/ \//p' | sort -u)
[ -n "$documented" ] && ok "openapi.yaml lists operations" || bad "openapi.yaml lists no operations"

for s in taskd assignd resultd validationd; do
  served=$("$bin/fedmarket-$s" --routes | sed -E 's/\{([a-z_]+)(:[a-z]+)?\}/{\1}/g' | sort -u)
  [ -n "$served" ] && ok "$s prints its routes" || bad "$s printed no routes"
  want=$(echo "$documented" | awk -v s="$s" '$3 == s || $3 == "*" { print $1, $2 }' | sort -u)
  missing=$(comm -13 <(echo "$served") <(echo "$want"))
  extra=$(comm -23 <(echo "$served") <(echo "$want"))
  if [ -z "$missing" ]; then ok "$s serves every operation documented for it"
  else bad "$s does not serve documented: $(echo $missing)"; fi
  if [ -z "$extra" ]; then ok "every route of $s is documented"
  else bad "$s serves undocumented: $(echo $extra)"; fi
done
exit $failed
