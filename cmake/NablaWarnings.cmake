# Strict warnings for nabla's own targets; NB_WARNINGS_AS_ERRORS turns them into errors.
function(nabla_set_warnings target)
    if(CMAKE_C_COMPILER_ID MATCHES "GNU|Clang")
        target_compile_options(${target} PRIVATE
            -Wall -Wextra -Wpedantic -Wshadow -Wconversion -Wsign-conversion
            -Wstrict-prototypes -Wmissing-prototypes -Wpointer-arith -Wcast-qual
            -Wwrite-strings -Wundef -Wvla -Wformat=2 -Wdouble-promotion)
        if(NB_WARNINGS_AS_ERRORS)
            target_compile_options(${target} PRIVATE -Werror)
        endif()
    endif()
endfunction()

# Sanitizers for the whole build: NB_SANITIZE="address;undefined".
function(nabla_enable_sanitizers)
    if(NB_SANITIZE)
        string(REPLACE ";" "," _san "${NB_SANITIZE}")
        add_compile_options(-fsanitize=${_san} -fno-omit-frame-pointer -fno-sanitize-recover=all)
        add_link_options(-fsanitize=${_san})
        # ThreadSanitizer's runtime is not ready when the loader runs the resolvers of
        # target_clones (ifuncs), which then crash: one baseline copy of each loop instead.
        if("thread" IN_LIST NB_SANITIZE)
            add_compile_definitions(NB_NO_CLONES)
        endif()
    endif()
endfunction()
