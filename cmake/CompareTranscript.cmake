# ctest -P script: run PROGRAM (with --seed SEED --no-graph when SEED is given) and compare
# its stdout with EXPECTED, a PyTorch transcript or a page's output blocks. Lines starting
# with '#' (cell headers) are skipped; object addresses and the "torch." prefix of torch.Size
# are masked.
set(args)
if(DEFINED SEED)
    set(args --seed "${SEED}" --no-graph)
endif()
execute_process(COMMAND "${PROGRAM}" ${args}
    OUTPUT_VARIABLE got RESULT_VARIABLE rc ERROR_QUIET)
if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${PROGRAM} exited with ${rc}")
endif()
file(READ "${EXPECTED}" want)

function(normalise text out)
    string(REGEX REPLACE "(^|\n)#[^\n]*" "" text "${text}")
    string(REGEX REPLACE "0x[0-9a-f]+" "0x?" text "${text}")
    string(REPLACE "torch.Size" "Size" text "${text}")
    string(STRIP "${text}" text)
    set(${out} "${text}" PARENT_SCOPE)
endfunction()

normalise("${got}" got_n)
normalise("${want}" want_n)
if(NOT got_n STREQUAL want_n)
    message(FATAL_ERROR "${PROGRAM} ${args}: output differs from ${EXPECTED}\n--- got ---\n${got_n}\n--- expected ---\n${want_n}")
endif()
message(STATUS "${PROGRAM} ${args}: output identical to ${EXPECTED}")
