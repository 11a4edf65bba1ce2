# ctest -P script: nabla's exported names are its API and nothing else.
#   SHARED: libnabla.so; every symbol of its dynamic symbol table that it defines
#           (nm -D --defined-only) must be a public name, nb_ followed by a letter or digit
#           (nb__ helpers are internal and hidden).
#   STATIC: libnabla.a; every global symbol it defines must start with nb_ (nb__ included:
#           an archive cannot hide them, but the prefix keeps them out of the user's way).
# Either may be empty. Debian 12's toolchain (GCC 12, binutils 2.40) defines no dynamic
# symbol of its own in a shared library (older linkers exported _init, _fini, _edata, _end,
# __bss_start), so nothing is exempt. NM is CMAKE_NM.
set(failures "")
function(check kind file allowed)
    execute_process(COMMAND "${NM}" ${ARGN} "${file}"
        OUTPUT_VARIABLE out RESULT_VARIABLE rc ERROR_VARIABLE err)
    if(NOT rc EQUAL 0)
        message(FATAL_ERROR "${NM} ${ARGN} ${file} failed: ${err}")
    endif()
    string(REPLACE "\n" ";" lines "${out}")
    set(count 0)
    set(bad "")
    foreach(line IN LISTS lines)
        # "<address> <type> <name>"; archive member headers ("x.o:") and blanks have no type
        if(NOT line MATCHES "^[0-9a-fA-F]* *([A-Za-z]) ([^ ]+)$")
            continue()
        endif()
        set(name "${CMAKE_MATCH_2}")
        math(EXPR count "${count} + 1")
        if(NOT name MATCHES "${allowed}")
            list(APPEND bad "${name}")
        endif()
    endforeach()
    if(count EQUAL 0)
        message(FATAL_ERROR "${file}: no defined symbols found (${NM} ${ARGN})")
    endif()
    if(bad)
        list(JOIN bad "\n  " bad)
        set(failures "${failures}${kind} ${file} exports names outside nabla's API:\n  ${bad}\n"
            PARENT_SCOPE)
    endif()
    message(STATUS "${kind} ${file}: ${count} defined symbols checked")
endfunction()

if(SHARED)
    check(shared "${SHARED}" "^nb_[a-z0-9]" -D --defined-only)
endif()
if(STATIC)
    check(static "${STATIC}" "^nb_" -g --defined-only)
endif()
if(failures)
    message(FATAL_ERROR "${failures}")
endif()
