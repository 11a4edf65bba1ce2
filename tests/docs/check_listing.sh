#!/bin/sh
# The first ```c internal block of a page must stand in a source file: its lines other than
# #include and blank ones, in the same order (other lines may come between them).
#   check_listing.sh PAGE SOURCE
page=$1 source=$2
awk '/^```c internal/ { inside = 1; next } inside && /^```/ { exit } inside' "$page" |
    grep -v '^#include' | grep -v '^[[:space:]]*$' >"${TMPDIR:-/tmp}/listing.$$"
[ -s "${TMPDIR:-/tmp}/listing.$$" ] || { echo "$page: no c internal block"; exit 1; }
awk -v src="$source" '
    BEGIN { n = 0; while ((getline line < src) > 0) s[++n] = line; at = 0 }
    {
        for (i = at + 1; i <= n; i++) if (s[i] == $0) break
        if (i > n) { printf "%s: not found after line %d: %s\n", src, at, $0; bad = 1; exit 1 }
        at = i
    }
    END { exit bad }' "${TMPDIR:-/tmp}/listing.$$"
rc=$?
rm -f "${TMPDIR:-/tmp}/listing.$$"
[ $rc -eq 0 ] && echo "the listing stands in $source"
exit $rc
