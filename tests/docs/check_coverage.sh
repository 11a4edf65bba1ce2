#!/bin/sh
# Every differentiable op of the public headers (a declaration whose comment names the node it
# records, "...Backward...", and the shape ops of tensor.h) has a gradcheck row (tests/gradcheck/*.h or tests/test_nn.c), a
# reference-value test (a test file that calls it beside PyTorch's numbers) and a row in
# docs/ops.md. Prints the ops and what each lacks; fails when one lacks anything.
#   check_coverage.sh SOURCE_DIR
src=$1
# tensor.h's shape ops name their nodes in the section's banner: every op there counts
ops=$(awk '
    /\/\*\*/ { comment = "" ; incomment = 1 }
    incomment { comment = comment $0 }
    /\*\// { incomment = 0 }
    /^\/\*\* @\} \*\/$/ { comment = "" }
    / \* Shape and views\./ { shape = 1 }
    / \* Printing/ { shape = 0 }
    /^NB_API/ && (comment ~ /Backward/ || shape) {
        if (match($0, /nb_[a-z0-9_]+\(/)) print substr($0, RSTART, RLENGTH - 1)
    }' "$src/include/nabla/ops.h" "$src/include/nabla/tensor.h" | sort -u)
bad=0 n=0
for op in $ops; do
    n=$((n + 1))
    missing=""
    grep -q "$op(" "$src"/tests/gradcheck/*.h "$src/tests/test_nn.c" || missing="$missing gradcheck"
    grep -lq "$op\b" "$src"/tests/test_ops*.c "$src/tests/test_engine.c" "$src/tests/test_tensor.c" ||
        missing="$missing reference"
    grep -q "\`$op(" "$src/docs/ops.md" || missing="$missing docs/ops.md"
    if [ -n "$missing" ]; then
        echo "$op: no$missing"
        bad=1
    fi
done
echo "$n differentiable ops checked"
exit $bad
