# Docs that cannot rot: every C code block of the given Markdown files is extracted at
# configure time and compiled with the project's warnings by the `nabla_docblocks` target,
# which the ctest `docblocks_build` builds; whole programs are then run by their own tests.
# The fence's info string says what a block is (docs/contributing.md, "Code blocks"):
#   ```c                      a whole program: compiled, linked, run (exit status 0); an
#                             ```output block right after it is its expected stdout
#   ```c fragment(PARAMS)     statements: compiled as the body of void f(PARAMS) after
#                             #include <nabla/nabla.h>; "(PARAMS)" may be left out
#   ```c file                 file-scope code (declarations, definitions) after nabla.h
#   ```c internal             file-scope code of the library itself, compiled with src/ on
#                             the include path (it includes the internal headers it uses)
#   ```c excerpt FILE         lines of FILE (a source file of the project, which is built
#                             anyway): not compiled here; the test doc_excerpts checks them
#   ```c session              the page's session blocks, in order, are the body of one
#                             main(), compiled and run; its stdout must equal the page's
#                             other ```output blocks, in order
# Expected output is compared with 0x addresses masked (cmake/CompareTranscript.cmake).
# Errors point at the Markdown file and line (#line directives).

# Placeholders keep ';', '[', ']' and '\' of the text out of CMake's list handling.
string(ASCII 1 _nb_db_sc)
string(ASCII 2 _nb_db_lb)
string(ASCII 3 _nb_db_rb)
string(ASCII 4 _nb_db_bs)

function(_nabla_db_restore var)
    set(t "${${var}}")
    string(REPLACE "${_nb_db_sc}" ";" t "${t}")
    string(REPLACE "${_nb_db_lb}" "[" t "${t}")
    string(REPLACE "${_nb_db_rb}" "]" t "${t}")
    string(REPLACE "${_nb_db_bs}" "\\" t "${t}")
    set(${var} "${t}" PARENT_SCOPE)
endfunction()

# Write text to file only when it changed, so a reconfigure rebuilds nothing needlessly.
# The caller's list `written` collects every file written.
function(_nabla_db_write file text)
    _nabla_db_restore(text)
    file(WRITE "${file}.tmp" "${text}")
    file(COPY_FILE "${file}.tmp" "${file}" ONLY_IF_DIFFERENT)
    file(REMOVE "${file}.tmp")
    set(written ${written} "${file}" PARENT_SCOPE)
endfunction()

# The test that runs a block's program: its exit status, or its stdout against expected.
function(_nabla_db_run_test name out expected)
    if(expected STREQUAL "")
        add_test(NAME ${name} COMMAND ${name} WORKING_DIRECTORY "${out}")
    else()
        _nabla_db_write("${out}/${name}.expected" "${expected}")
        set(written ${written} PARENT_SCOPE)
        add_test(NAME ${name}
            COMMAND "${CMAKE_COMMAND}" -DPROGRAM=$<TARGET_FILE:${name}>
                    "-DEXPECTED=${out}/${name}.expected"
                    -P "${PROJECT_SOURCE_DIR}/cmake/CompareTranscript.cmake"
            WORKING_DIRECTORY "${out}")
    endif()
    set_tests_properties(${name} PROPERTIES FIXTURES_REQUIRED nabla_docblocks LABELS docs)
endfunction()

function(nabla_add_doc_blocks)
    set(out "${CMAKE_CURRENT_BINARY_DIR}/docblocks")
    file(MAKE_DIRECTORY "${out}")
    add_custom_target(nabla_docblocks)
    add_test(NAME docblocks_build
        COMMAND "${CMAKE_COMMAND}" --build "${PROJECT_BINARY_DIR}" --config $<CONFIG>
                --target nabla_docblocks)
    set_tests_properties(docblocks_build PROPERTIES FIXTURES_SETUP nabla_docblocks LABELS docs)

    foreach(md IN LISTS ARGN)
        set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS "${md}")
        file(RELATIVE_PATH rel "${PROJECT_SOURCE_DIR}" "${md}")
        string(MAKE_C_IDENTIFIER "${rel}" id)
        file(READ "${md}" text)
        string(REPLACE "\\" "${_nb_db_bs}" text "${text}")
        string(REPLACE ";" "${_nb_db_sc}" text "${text}")
        string(REPLACE "[" "${_nb_db_lb}" text "${text}")
        string(REPLACE "]" "${_nb_db_rb}" text "${text}")
        string(REPLACE "\n" ";" lines "${text}")

        set(lineno 0)
        set(in_block FALSE)
        set(n 0)
        set(objects "")
        set(internals "")
        set(session "")
        set(session_line 0)
        set(expected "")
        set(program "")
        set(written "")
        foreach(line IN LISTS lines)
            math(EXPR lineno "${lineno} + 1")
            if(NOT in_block)
                if(line MATCHES "^( *)(```+)(.*)$")
                    set(in_block TRUE)
                    string(LENGTH "${CMAKE_MATCH_1}" indent)
                    set(fence "${CMAKE_MATCH_2}")
                    string(STRIP "${CMAKE_MATCH_3}" info)
                    set(body "")
                    math(EXPR start "${lineno} + 1")
                endif()
                continue()
            endif()
            if(line MATCHES "^ *(```+) *$" AND CMAKE_MATCH_1 STREQUAL fence)
                set(in_block FALSE)
            else()
                # Drop the fence's indentation (blocks inside list items).
                # (string(REGEX REPLACE) re-anchors ^ after each match, so count instead.)
                set(drop 0)
                if(line MATCHES "^( +)")
                    string(LENGTH "${CMAKE_MATCH_1}" drop)
                endif()
                if(drop GREATER indent)
                    set(drop ${indent})
                endif()
                string(SUBSTRING "${line}" ${drop} -1 line)
                string(APPEND body "${line}\n")
                continue()
            endif()

            # A block ended: dispatch on its info string.
            set(where "#line ${start} \"${rel}\"\n")
            if(info STREQUAL "output")
                if(program)
                    string(APPEND program_expected "${body}")
                else()
                    string(APPEND expected "${body}")
                endif()
                continue()
            endif()
            if(program)
                _nabla_db_run_test(${program} "${out}" "${program_expected}")
                set(program "")
            endif()
            if(NOT info MATCHES "^c( |\\(|$)")
                continue()
            endif()
            if(info MATCHES "^c excerpt ")
                # code shown from a source file of the project: tests/docs/check_excerpts.sh
                continue()
            endif()
            math(EXPR n "${n} + 1")
            set(name "doc_${id}_${n}")
            set(src "${out}/${name}.c")
            string(REGEX REPLACE "^c *" "" kind "${info}")
            if(kind STREQUAL "")
                _nabla_db_write("${src}" "${where}${body}")
                add_executable(${name} EXCLUDE_FROM_ALL "${src}")
                target_link_libraries(${name} PRIVATE nabla::nabla)
                nabla_set_warnings(${name})
                add_dependencies(nabla_docblocks ${name})
                # its test is added at the next block, which may be its output
                set(program ${name})
                set(program_expected "")
            elseif(kind MATCHES "^fragment *(\\((.*)\\))? *$")
                set(params "${CMAKE_MATCH_2}")
                set(uses "")
                if(params STREQUAL "")
                    set(params void)
                else()
                    string(REPLACE "," ";" plist "${params}")
                    foreach(p IN LISTS plist)
                        string(REGEX MATCH "[A-Za-z_][A-Za-z0-9_]*$" pname "${p}")
                        string(APPEND uses "    (void)${pname}${_nb_db_sc}\n")
                    endforeach()
                endif()
                _nabla_db_write("${src}"
                    "#include <nabla/nabla.h>\n\nvoid ${name}(${params})${_nb_db_sc}\nvoid ${name}(${params})\n{\n${uses}${where}${body}}\n")
                list(APPEND objects "${src}")
            elseif(kind STREQUAL "file")
                _nabla_db_write("${src}" "#include <nabla/nabla.h>\n${where}${body}")
                list(APPEND objects "${src}")
            elseif(kind STREQUAL "internal")
                _nabla_db_write("${src}" "${where}${body}")
                list(APPEND internals "${src}")
            elseif(kind STREQUAL "session")
                string(APPEND session "${where}${body}")
            else()
                message(FATAL_ERROR "${rel}:${start}: unknown code block kind '```${info}' "
                    "(see cmake/NablaDocBlocks.cmake)")
            endif()
        endforeach()
        if(in_block)
            message(FATAL_ERROR "${rel}:${start}: code block not closed")
        endif()
        if(program)
            _nabla_db_run_test(${program} "${out}" "${program_expected}")
        endif()

        if(objects)
            add_library(doc_${id}_compiled OBJECT EXCLUDE_FROM_ALL ${objects})
            target_link_libraries(doc_${id}_compiled PRIVATE nabla::nabla)
            nabla_set_warnings(doc_${id}_compiled)
            # Fragments show how calls go together; a value they make may go unused.
            target_compile_options(doc_${id}_compiled PRIVATE -Wno-unused-variable
                -Wno-unused-but-set-variable)
            add_dependencies(nabla_docblocks doc_${id}_compiled)
        endif()
        if(internals)
            add_library(doc_${id}_internal OBJECT EXCLUDE_FROM_ALL ${internals})
            target_link_libraries(doc_${id}_internal PRIVATE nabla::nabla)
            target_include_directories(doc_${id}_internal PRIVATE "${PROJECT_SOURCE_DIR}/src")
            target_compile_definitions(doc_${id}_internal PRIVATE NB_BUILDING)
            nabla_set_warnings(doc_${id}_internal)
            add_dependencies(nabla_docblocks doc_${id}_internal)
        endif()
        if(session)
            set(name "doc_${id}_session")
            _nabla_db_write("${out}/${name}.c"
                "#include <nabla/nabla.h>\n\nint main(void)\n{\n${session}    return 0${_nb_db_sc}\n}\n")
            add_executable(${name} EXCLUDE_FROM_ALL "${out}/${name}.c")
            target_link_libraries(${name} PRIVATE nabla::nabla)
            nabla_set_warnings(${name})
            add_dependencies(nabla_docblocks ${name})
            _nabla_db_run_test(${name} "${out}" "${expected}")
        endif()
        # Files of blocks that no longer exist (the page changed) go.
        file(GLOB generated "${out}/doc_${id}_*")
        foreach(f IN LISTS generated)
            list(FIND written "${f}" i)
            if(i LESS 0)
                file(REMOVE "${f}")
            endif()
        endforeach()
    endforeach()
endfunction()
