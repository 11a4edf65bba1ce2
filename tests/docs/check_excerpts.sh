#!/bin/sh
# Every ```c excerpt FILE block of the given pages stands in FILE (relative to ROOT): its
# non-blank lines are lines of FILE in the same order and, between two lines that read
# "/* ... */" (where the page leaves code out), one after another (blank lines aside).
#   check_excerpts.sh ROOT PAGE...
root=$1
shift
status=0 blocks=0
for page; do
    # one record per block: "FILE<TAB>LINE" then its lines, then an empty marker line
    out=$(awk -v root="$root" -v page="$page" '
        function check(    i, j, k, at, seg, line) {
            n = 0
            k = 0
            while ((getline line < (root "/" file)) > 0) {
                k++
                if (line !~ /^[[:space:]]*$/) { s[++n] = line; ln[n] = k }
            }
            close(root "/" file)
            if (n == 0) { printf "%s:%d: %s: no such file or empty\n", page, start, file; bad = 1; return }
            at = 0; seg = 0
            for (i = 1; i <= m; i++) {
                if (b[i] ~ /^[[:space:]]*\/\* \.\.\. \*\/[[:space:]]*$/) { seg = 0; continue }
                if (seg) {
                    if (at + 1 <= n && s[at + 1] == b[i]) { at++; continue }
                    printf "%s:%d: line %d of the block is not the line after %s:%d (%s)\n",
                           page, start, i, file, ln[at], b[i]
                    bad = 1; return
                }
                for (j = at + 1; j <= n; j++) if (s[j] == b[i]) break
                if (j > n) {
                    printf "%s:%d: not found in %s after its line %d: %s\n", page, start, file,
                           at ? ln[at] : 0, b[i]
                    bad = 1; return
                }
                at = j; seg = 1
            }
            count++
        }
        /^```c excerpt / { file = $3; start = FNR; m = 0; inside = 1; next }
        inside && /^```/ { inside = 0; check(); next }
        inside && !/^[[:space:]]*$/ { b[++m] = $0 }
        END { printf "%d\n", count; exit bad }
    ' "$page")
    rc=$?
    echo "$out" | sed '$d'
    blocks=$((blocks + $(echo "$out" | tail -n 1)))
    [ $rc -eq 0 ] || status=1
done
[ $status -eq 0 ] && echo "$blocks excerpts stand in their files"
exit $status
