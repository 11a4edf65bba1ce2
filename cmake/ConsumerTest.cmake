# ctest -P script: use nabla the way another project does and run the program it builds
# (tests/consumer/main.c, or main.cpp) against the expected gradient.
#   MODE=cmake          install, move the tree, find_package(nabla) [COMPONENTS]
#   MODE=cxx            the same from a C++17 project (tests/consumer/cxx)
#   MODE=choose         which library find_package gives, for each way of asking
#                       (tests/consumer/choose), with both installed and with one
#   MODE=pkgconfig      install, move the tree, cc $(pkg-config --cflags --libs nabla)
#   MODE=pkgconfig-static   ... cc -static $(pkg-config --static --cflags --libs nabla)
#   MODE=subdirectory   add_subdirectory(<nabla source>) (tests/consumer/intree)
#   MODE=fetchcontent   FetchContent from the source release (cpack's nabla-<version>.tar.gz)
#   MODE=deb            cpack -G DEB, libnabla-dev's Depends against nabla.pc's Requires.private,
#                       dpkg -i, the pkg-config consumer, dpkg --purge (root;
#                       RUNTIME_PACKAGE names the library package, libnabla<major>)
#   MODE=dist           install, move the tree, find_package(nabla COMPONENTS dist), run the
#                       program under MPIEXEC (MPIEXEC_NP: its -n flag) on 2 ranks; then how
#                       find_package answers for dist once the dist files are gone
# Variables: BUILD_DIR (nabla's build tree), SOURCE_DIR (nabla's source tree), WORK_DIR,
# LIBDIR (CMAKE_INSTALL_LIBDIR), C_COMPILER, READELF; for the CMake consumers: COMPONENTS
# (for find_package), EXPECT (SHARED_LIBRARY or STATIC_LIBRARY), ARGS (more -D arguments).
cmake_minimum_required(VERSION 3.21)
set(consumer_dir "${SOURCE_DIR}/tests/consumer")
set(expected_output "tensor\\(\\[-0.0672, -0.2154, -0.3306\\]\\)")
file(REMOVE_RECURSE "${WORK_DIR}")
file(MAKE_DIRECTORY "${WORK_DIR}")

function(run what)
    execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
    if(NOT rc EQUAL 0)
        message(FATAL_ERROR "${what} failed (${rc}):\n${ARGN}\n${out}\n${err}")
    endif()
    set(run_output "${out}" PARENT_SCOPE)
endfunction()

# Install into a staging prefix, then move it: the consumer sees a tree at a path nabla was
# never configured or installed for, as after unpacking a package elsewhere.
function(install_moved out_prefix)
    run("cmake --install" "${CMAKE_COMMAND}" --install "${BUILD_DIR}" --prefix "${WORK_DIR}/stage")
    file(RENAME "${WORK_DIR}/stage" "${WORK_DIR}/moved")
    set(${out_prefix} "${WORK_DIR}/moved" PARENT_SCOPE)
endfunction()

# Run program (with env, e.g. LD_LIBRARY_PATH=...) and check it prints the seed's gradient.
function(check_program program)
    run("running ${program}" "${CMAKE_COMMAND}" -E env ${ARGN} "${program}")
    if(NOT run_output MATCHES "${expected_output}")
        message(FATAL_ERROR "${program} printed:\n${run_output}")
    endif()
    message(STATUS "${program}: ${run_output}")
endfunction()

# Whether program needs libnabla.so.<major> at run time (its dynamic section names it).
function(check_linkage program want_shared)
    execute_process(COMMAND "${READELF}" -d "${program}" OUTPUT_VARIABLE dyn ERROR_QUIET)
    if(dyn MATCHES "NEEDED[^\n]*libnabla\\.so")
        set(shared TRUE)
    else()
        set(shared FALSE)
    endif()
    if(NOT shared STREQUAL want_shared)
        message(FATAL_ERROR "${program}: links libnabla.so: ${shared}, expected ${want_shared}\n${dyn}")
    endif()
endfunction()

function(cmake_consumer source prefix_path)
    run("configuring the consumer" "${CMAKE_COMMAND}" -S "${source}" -B "${WORK_DIR}/build"
        "-DCMAKE_PREFIX_PATH=${prefix_path}" "-DCMAKE_C_COMPILER=${C_COMPILER}"
        "-DNABLA_COMPONENTS=${COMPONENTS}" "-DEXPECT=${EXPECT}" ${ARGS} ${ARGN})
    run("building the consumer" "${CMAKE_COMMAND}" --build "${WORK_DIR}/build" --parallel 2)
    check_program("${WORK_DIR}/build/consumer")
    if(EXPECT)
        if(EXPECT STREQUAL "SHARED_LIBRARY")
            check_linkage("${WORK_DIR}/build/consumer" TRUE)
        else()
            check_linkage("${WORK_DIR}/build/consumer" FALSE)
        endif()
    endif()
endfunction()

# cc main.c $(pkg-config [--static] --cflags --libs nabla) [-static], then run it.
function(pkgconfig_consumer static)
    set(pc_args --cflags --libs nabla)
    set(cc_args)
    if(static)
        set(pc_args --static ${pc_args})
        set(cc_args -static)
    endif()
    run("pkg-config" pkg-config ${pc_args})
    separate_arguments(flags UNIX_COMMAND "${run_output}")
    message(STATUS "pkg-config ${pc_args}: ${run_output}")
    run("compiling the pkg-config consumer" "${C_COMPILER}" ${cc_args} "${consumer_dir}/main.c"
        ${flags} -o "${WORK_DIR}/consumer")
endfunction()

# Configure tests/consumer/choose with args and check the "nabla: ..." line matches want.
function(check_choice want)
    math(EXPR n "${choice_count} + 1")
    set(choice_count ${n} PARENT_SCOPE)
    run("configuring choose (${ARGN})" "${CMAKE_COMMAND}" -S "${consumer_dir}/choose"
        -B "${WORK_DIR}/choose-${n}" "-DCMAKE_PREFIX_PATH=${prefix}"
        "-DCMAKE_C_COMPILER=${C_COMPILER}" -DNABLA_VERSION=0.1 ${ARGN})
    string(REGEX MATCH "nabla: [^\n]*" got "${run_output}")
    if(NOT got MATCHES "${want}")
        message(FATAL_ERROR "find_package(nabla) with ${ARGN}: '${got}', expected '${want}'")
    endif()
    message(STATUS "${ARGN}: ${got}")
endfunction()

# The rules of nablaConfig.cmake (docs/install.md): components, nabla_SHARED_LIBS, the
# consumer's BUILD_SHARED_LIBS, else shared; the version's major must match.
function(choose_consumer)
    install_moved(prefix)
    set(choice_count 0)
    check_choice("found shared SHARED_LIBRARY")
    check_choice("found static STATIC_LIBRARY" -DNABLA_COMPONENTS=static)
    check_choice("found shared SHARED_LIBRARY" -DNABLA_COMPONENTS=shared)
    check_choice("found static STATIC_LIBRARY" -Dnabla_SHARED_LIBS=OFF)
    check_choice("found static STATIC_LIBRARY" -DBUILD_SHARED_LIBS=OFF)
    check_choice("found shared SHARED_LIBRARY" -DBUILD_SHARED_LIBS=OFF -Dnabla_SHARED_LIBS=ON)
    check_choice("not found: components shared and static exclude each other"
        "-DNABLA_COMPONENTS=shared static")
    check_choice("not found: unknown component 'gpu'" -DNABLA_COMPONENTS=gpu)
    check_choice("not found" -DNABLA_VERSION=1.0)
    check_choice("found shared" -DNABLA_VERSION=0.0)
    # With only the shared library installed.
    file(GLOB static_files "${prefix}/${LIBDIR}/cmake/nabla/nabla-static-targets*.cmake")
    file(REMOVE ${static_files})
    check_choice("not found: the static library is not installed" -DNABLA_COMPONENTS=static)
    check_choice("not found: the static library is not installed" -Dnabla_SHARED_LIBS=OFF)
    check_choice("found shared SHARED_LIBRARY" -DBUILD_SHARED_LIBS=OFF)
endfunction()

# The names in a Debian Depends field, each alternative of "a | b" included, without
# versions or architectures.
function(deb_depends_names field out)
    string(REGEX REPLACE "\\([^)]*\\)" "" field "${field}")
    string(REGEX REPLACE "[,|]" ";" field "${field}")
    set(names)
    foreach(name IN LISTS field)
        string(REGEX REPLACE ":[a-z0-9]+" "" name "${name}")
        string(STRIP "${name}" name)
        if(name)
            list(APPEND names "${name}")
        endif()
    endforeach()
    set(${out} "${names}" PARENT_SCOPE)
endfunction()

# Every module of nabla.pc's Requires.private (pkg-config reads them even for --cflags) is
# installed by a package that libnabla-dev depends on, directly or through the installed
# packages it depends on.
function(check_dev_depends dev_deb)
    run("dpkg-deb -f" dpkg-deb -f "${dev_deb}" Depends)
    deb_depends_names("${run_output}" queue)
    set(reached)
    while(queue)
        list(POP_FRONT queue p)
        if(p IN_LIST reached)
            continue()
        endif()
        list(APPEND reached "${p}")
        execute_process(COMMAND dpkg-query -W "-f=\${Depends}" "${p}"
            RESULT_VARIABLE rc OUTPUT_VARIABLE deps ERROR_QUIET)
        if(rc EQUAL 0)
            deb_depends_names("${deps}" more)
            list(APPEND queue ${more})
        endif()
    endwhile()
    file(STRINGS "${BUILD_DIR}/nabla.pc" requires REGEX "^Requires\\.private:")
    string(REGEX REPLACE "^Requires\\.private:" "" requires "${requires}")
    string(REGEX REPLACE "[ \t,]+" ";" requires "${requires}")
    foreach(module IN LISTS requires)
        if(NOT module)
            continue()
        endif()
        run("pkg-config ${module}" pkg-config --variable=pcfiledir "${module}")
        string(STRIP "${run_output}" dir)
        file(REAL_PATH "${dir}/${module}.pc" pc)
        run("dpkg -S ${pc}" dpkg -S "${pc}")
        string(REGEX REPLACE ": .*" "" owners "${run_output}")
        deb_depends_names("${owners}" owners)
        set(found FALSE)
        foreach(owner IN LISTS owners)
            if(owner IN_LIST reached)
                set(found TRUE)
            endif()
        endforeach()
        if(NOT found)
            message(FATAL_ERROR "nabla.pc requires ${module} (${pc}, from ${owners}), but "
                "libnabla-dev does not depend on it: it reaches ${reached}")
        endif()
        message(STATUS "nabla.pc's ${module}: ${pc}, from ${owners}, a dependency of libnabla-dev")
    endforeach()
endfunction()

# Make the .deb packages of BUILD_DIR, check libnabla-dev's dependencies, install them on
# this machine, build and run the pkg-config consumer against the system's nabla, then purge
# them again, also on failure. Run only as root (tests/consumer/if_root_dpkg.sh skips it
# otherwise).
function(deb_consumer)
    set(packages libnabla-dev ${RUNTIME_PACKAGE})
    foreach(p IN LISTS packages)
        execute_process(COMMAND dpkg-query -W "-f=\${Status}" ${p}
            OUTPUT_VARIABLE status ERROR_QUIET)
        if(status MATCHES "ok installed")
            message(FATAL_ERROR "${p} is installed already; this test installs and removes "
                "its own (dpkg --purge ${packages} to run it)")
        endif()
    endforeach()
    file(REMOVE_RECURSE "${WORK_DIR}/pkg") # no package of an earlier run
    run("cpack -G DEB" cpack -G DEB --config "${BUILD_DIR}/CPackConfig.cmake" -B "${WORK_DIR}/pkg")
    file(GLOB debs "${WORK_DIR}/pkg/*.deb")
    message(STATUS "packages: ${debs}")
    foreach(deb IN LISTS debs)
        run("dpkg-deb" dpkg-deb --info "${deb}")
        message(STATUS "${run_output}")
    endforeach()
    file(GLOB dev_deb "${WORK_DIR}/pkg/libnabla-dev_*.deb")
    list(LENGTH dev_deb n_dev)
    if(NOT n_dev EQUAL 1)
        message(FATAL_ERROR "cpack made ${n_dev} libnabla-dev packages: ${dev_deb}")
    endif()
    check_dev_depends("${dev_deb}")
    unset(ENV{PKG_CONFIG_PATH})
    execute_process(COMMAND dpkg -i ${debs} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
    set(failure "")
    if(NOT rc EQUAL 0)
        set(failure "dpkg -i failed (${rc}):\n${out}\n${err}")
    else()
        # run() fails with FATAL_ERROR, which would leave the packages installed: test in a
        # child cmake so the removal below always happens.
        execute_process(COMMAND "${CMAKE_COMMAND}" "-DMODE=deb-installed"
                "-DSOURCE_DIR=${SOURCE_DIR}" "-DWORK_DIR=${WORK_DIR}/consume"
                "-DC_COMPILER=${C_COMPILER}" "-DREADELF=${READELF}" -P "${CMAKE_CURRENT_LIST_FILE}"
            RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
        message(STATUS "${out}${err}")
        if(NOT rc EQUAL 0)
            set(failure "the pkg-config consumer of the installed package failed")
        endif()
    endif()
    execute_process(COMMAND dpkg --purge ${packages} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
    if(NOT rc EQUAL 0)
        string(APPEND failure "\ndpkg --purge failed (${rc}):\n${out}\n${err}")
    endif()
    if(failure)
        message(FATAL_ERROR "${failure}")
    endif()
    if(EXISTS /usr/include/nabla/nabla.h)
        message(FATAL_ERROR "dpkg --purge left /usr/include/nabla behind")
    endif()
endfunction()

# tests/consumer/dist: build and run the MPI program, then probe find_package's answers.
function(dist_consumer)
    install_moved(prefix)
    set(source "${consumer_dir}/dist")
    run("configuring the dist consumer" "${CMAKE_COMMAND}" -S "${source}" -B "${WORK_DIR}/build"
        "-DCMAKE_PREFIX_PATH=${prefix}" "-DCMAKE_C_COMPILER=${C_COMPILER}"
        "-DNABLA_COMPONENTS=${COMPONENTS}" "-DEXPECT=${EXPECT}")
    run("building the dist consumer" "${CMAKE_COMMAND}" --build "${WORK_DIR}/build")
    run("running the dist consumer" ${MPIEXEC} ${MPIEXEC_NP} 2 "${WORK_DIR}/build/consumer")
    if(NOT run_output MATCHES "${expected_output}")
        message(FATAL_ERROR "the dist consumer printed:\n${run_output}")
    endif()
    message(STATUS "mpiexec -n 2 consumer: ${run_output}")
    set(n 0)
    foreach(case IN ITEMS "found, dist TRUE|OPTIONAL_COMPONENTS dist"
                          "found, dist FALSE|COMPONENTS ${COMPONENTS}"
                          "not found: unknown component 'gpu' \\(nabla has shared, static and dist\\)|COMPONENTS gpu"
                          "not found: the dist component \\(MPI\\) is not installed|REMOVE COMPONENTS dist"
                          "found, dist FALSE|OPTIONAL_COMPONENTS dist")
        string(REPLACE "|" ";" case "${case}")
        list(GET case 0 want)
        list(GET case 1 probe)
        if(probe MATCHES "^REMOVE (.*)")
            file(GLOB dist_files "${prefix}/${LIBDIR}/cmake/nabla/nabla-dist-*.cmake")
            file(REMOVE ${dist_files})
            set(probe "${CMAKE_MATCH_1}")
        endif()
        math(EXPR n "${n} + 1")
        run("probing find_package(nabla ${probe})" "${CMAKE_COMMAND}" -S "${source}"
            -B "${WORK_DIR}/probe-${n}" "-DCMAKE_PREFIX_PATH=${prefix}"
            "-DCMAKE_C_COMPILER=${C_COMPILER}" "-DNABLA_PROBE=${probe}")
        string(REGEX MATCH "nabla: [^\n]*" got "${run_output}")
        if(NOT got MATCHES "${want}")
            message(FATAL_ERROR "find_package(nabla ${probe}): '${got}', expected '${want}'")
        endif()
        message(STATUS "${probe}: ${got}")
    endforeach()
endfunction()

if(MODE STREQUAL "cmake")
    install_moved(prefix)
    cmake_consumer("${consumer_dir}" "${prefix}")
elseif(MODE STREQUAL "choose")
    choose_consumer()
elseif(MODE STREQUAL "cxx")
    install_moved(prefix)
    cmake_consumer("${consumer_dir}/cxx" "${prefix}")
elseif(MODE MATCHES "^pkgconfig")
    install_moved(prefix)
    set(ENV{PKG_CONFIG_PATH} "${prefix}/${LIBDIR}/pkgconfig")
    if(MODE STREQUAL "pkgconfig-static")
        pkgconfig_consumer(TRUE)
        check_linkage("${WORK_DIR}/consumer" FALSE)
        check_program("${WORK_DIR}/consumer")
    else()
        pkgconfig_consumer(FALSE)
        check_linkage("${WORK_DIR}/consumer" TRUE)
        check_program("${WORK_DIR}/consumer" "LD_LIBRARY_PATH=${prefix}/${LIBDIR}")
    endif()
elseif(MODE STREQUAL "subdirectory")
    cmake_consumer("${consumer_dir}/intree" "" "-DNABLA_SOURCE_DIR=${SOURCE_DIR}")
elseif(MODE STREQUAL "fetchcontent")
    # The source release, as `make package_source` makes it.
    run("cpack (source)" cpack --config "${BUILD_DIR}/CPackSourceConfig.cmake" -B "${WORK_DIR}/src")
    file(GLOB tarball "${WORK_DIR}/src/nabla-*.tar.gz")
    file(SHA256 "${tarball}" sha)
    cmake_consumer("${consumer_dir}/intree" "" "-DNABLA_URL=file://${tarball}" "-DNABLA_SHA256=${sha}")
elseif(MODE STREQUAL "deb-installed")
    pkgconfig_consumer(FALSE)
    check_linkage("${WORK_DIR}/consumer" TRUE)
    check_program("${WORK_DIR}/consumer")
elseif(MODE STREQUAL "deb")
    deb_consumer()
elseif(MODE STREQUAL "dist")
    dist_consumer()
else()
    message(FATAL_ERROR "unknown MODE '${MODE}'")
endif()
