# `docs`: the API reference, Doxygen HTML of the public headers, in <build>/docs/html.
# Every warning is an error (WARN_AS_ERROR = FAIL_ON_WARNINGS), including an undocumented
# public function, type, macro or field. docs/contributing.md says how to keep it clean.
find_package(Doxygen QUIET)
if(NOT DOXYGEN_FOUND)
    message(STATUS "nabla: doxygen not found, no docs target (apt-get install doxygen)")
    return()
endif()
set(NABLA_DOXYGEN_OUT "${PROJECT_BINARY_DIR}/docs")
configure_file("${PROJECT_SOURCE_DIR}/docs/Doxyfile.in" "${NABLA_DOXYGEN_OUT}/Doxyfile" @ONLY)
file(GLOB _nb_public_headers CONFIGURE_DEPENDS "${PROJECT_SOURCE_DIR}/include/nabla/*.h")
add_custom_command(OUTPUT "${NABLA_DOXYGEN_OUT}/html/index.html"
    COMMAND "${DOXYGEN_EXECUTABLE}" "${NABLA_DOXYGEN_OUT}/Doxyfile"
    DEPENDS "${NABLA_DOXYGEN_OUT}/Doxyfile" ${_nb_public_headers} "${PROJECT_SOURCE_DIR}/docs/api.md"
    WORKING_DIRECTORY "${NABLA_DOXYGEN_OUT}"
    COMMENT "Doxygen: the API reference in ${NABLA_DOXYGEN_OUT}/html"
    VERBATIM)
add_custom_target(docs DEPENDS "${NABLA_DOXYGEN_OUT}/html/index.html")
if(NB_BUILD_TESTS)
    # Runs doxygen itself (not the target) so a run always sees every warning again, and
    # checks that every public header has its page.
    add_test(NAME doxygen COMMAND sh "${PROJECT_SOURCE_DIR}/tests/docs/check_doxygen.sh"
        "${DOXYGEN_EXECUTABLE}" "${NABLA_DOXYGEN_OUT}/Doxyfile" "${PROJECT_SOURCE_DIR}/include/nabla"
        WORKING_DIRECTORY "${NABLA_DOXYGEN_OUT}")
    set_tests_properties(doxygen PROPERTIES LABELS docs)
endif()
