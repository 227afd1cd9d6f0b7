#!/bin/sh
# A writ `command` connector that keeps memberships in a text file, one
# "<role> <account>" per line. writ passes the call in WRIT_ACTION, WRIT_ROLE and
# WRIT_ACCOUNT (and as JSON on stdin, unused here). See docs/connectors.md.
set -eu
state="${WRIT_MEMBERSHIPS_FILE:-$(dirname "$0")/state/memberships.txt}"
mkdir -p "$(dirname "$state")"
touch "$state"
# writ calls concurrently (several accounts at once): one call at a time edits the file
# (flock is util-linux's; where there is none, concurrent calls may race).
if command -v flock >/dev/null 2>&1; then
  exec 9>>"$state.lock"
  flock 9
fi
line="$WRIT_ROLE $WRIT_ACCOUNT"
case "$WRIT_ACTION" in
  grant)
    grep -qxF "$line" "$state" || echo "$line" >> "$state" ;;
  revoke)
    grep -vxF "$line" "$state" > "$state.tmp" || true
    mv "$state.tmp" "$state" ;;
  check)
    if grep -qxF "$line" "$state"; then echo '{"held": true}'; else echo '{"held": false}'; fi ;;
  list)
    # Every account holding the role, as {"accounts": [...]} (names have no spaces or quotes here).
    awk -v role="$WRIT_ROLE" 'BEGIN { printf "{\"accounts\": [" } $1 == role { printf "%s\"%s\"", (n++ ? ", " : ""), $2 } END { print "]}" }' "$state" ;;
  *)
    echo "unknown action: $WRIT_ACTION" >&2; exit 2 ;;
esac
