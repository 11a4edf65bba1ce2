#!/bin/sh
# Doxygen over the public headers (every warning an error, as the Doxyfile says), into a
# fresh directory, and a page for each header: Doxygen leaves a header whose comment lacks
# @file out of the reference, with no warning for anything it declares.
#   check_doxygen.sh DOXYGEN DOXYFILE INCLUDE_DIR
doxygen=$1 doxyfile=$2 include_dir=$3
out=$(mktemp -d) || exit 1
{ cat "$doxyfile"; echo "OUTPUT_DIRECTORY = $out"; } | "$doxygen" -
rc=$?
if [ $rc -eq 0 ]; then
    for h in "$include_dir"/*.h; do
        n=$(basename "$h" .h)
        [ -f "$out/html/${n}_8h.html" ] || { echo "$h: not in the API reference (no @file)"; rc=1; }
    done
fi
rm -rf "$out"
[ $rc -eq 0 ] && echo "the API reference has a page for each of $(ls "$include_dir"/*.h | wc -l) headers"
exit $rc
