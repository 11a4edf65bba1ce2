# ctest -P script: run PROGRAM --seed SEED and compare its stdout with EXPECTED, a PyTorch
# transcript. Lines starting with '#' (cell headers) are skipped; object addresses and the
# "torch." prefix of torch.Size are masked.
execute_process(COMMAND "${PROGRAM}" --seed "${SEED}" --no-graph
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
    message(FATAL_ERROR "transcript differs for seed ${SEED}\n--- nabla ---\n${got_n}\n--- PyTorch ---\n${want_n}")
endif()
message(STATUS "seed ${SEED}: transcript identical to PyTorch's")
