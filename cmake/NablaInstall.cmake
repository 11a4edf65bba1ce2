# Install rules: headers, libnabla.so and/or libnabla.a, the CMake package and nabla.pc.
# Components: Runtime (the shared library proper, libnabla.so.<major>) and Development
# (everything a build needs: headers, the libnabla.so link, libnabla.a, CMake and pkg-config
# files). Every installed file locates the others relative to itself, so an installed tree
# can be moved (or unpacked from a .deb under any prefix) and still works.
include(CMakePackageConfigHelpers)
set(NABLA_CMAKE_DIR "${CMAKE_INSTALL_LIBDIR}/cmake/nabla")

foreach(_kind shared static)
    string(TOUPPER ${_kind} _KIND)
    set(_target ${NABLA_${_KIND}_TARGET})
    if(NOT _target)
        continue()
    endif()
    install(TARGETS ${_target} EXPORT nabla-${_kind}-targets
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
            COMPONENT Runtime NAMELINK_COMPONENT Development
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT Development
        RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT Runtime)
    install(EXPORT nabla-${_kind}-targets NAMESPACE nabla::
        DESTINATION ${NABLA_CMAKE_DIR} COMPONENT Development)
endforeach()
install(DIRECTORY include/nabla DESTINATION ${CMAKE_INSTALL_INCLUDEDIR} COMPONENT Development
    PATTERN dist.h EXCLUDE)

# libnabla_dist (NB_DIST), in a component of its own, Dist: its library, dist.h and the
# nabla-dist-<kind>-targets.cmake that find_package(nabla COMPONENTS dist) loads. CPack's
# packages leave it out (it needs MPI at run time).
if(NB_DIST)
    foreach(_kind shared static)
        string(TOUPPER ${_kind} _KIND)
        set(_target ${NABLA_DIST_${_KIND}_TARGET})
        if(NOT _target)
            continue()
        endif()
        install(TARGETS ${_target} EXPORT nabla-dist-${_kind}-targets
            LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT Dist
            ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT Dist
            RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT Dist)
        install(EXPORT nabla-dist-${_kind}-targets NAMESPACE nabla::
            DESTINATION ${NABLA_CMAKE_DIR} COMPONENT Dist)
    endforeach()
    install(FILES include/nabla/dist.h DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/nabla
        COMPONENT Dist)
endif()

# nablaConfig.cmake: picks the shared or the static export (see the file), finding a static
# library's BLAS and Threads dependencies first, and loads nabla::dist when asked for.
configure_package_config_file(cmake/nablaConfig.cmake.in
    "${PROJECT_BINARY_DIR}/nablaConfig.cmake"
    INSTALL_DESTINATION ${NABLA_CMAKE_DIR})
# Within a major version the ABI only grows (docs/install.md, "Versions").
write_basic_package_version_file("${PROJECT_BINARY_DIR}/nablaConfigVersion.cmake"
    COMPATIBILITY SameMajorVersion)
install(FILES "${PROJECT_BINARY_DIR}/nablaConfig.cmake"
              "${PROJECT_BINARY_DIR}/nablaConfigVersion.cmake"
    DESTINATION ${NABLA_CMAKE_DIR} COMPONENT Development)

# nabla.pc: prefix from ${pcfiledir}, so the file is right wherever the tree ends up. A
# static link (pkg-config --static) adds the BLAS module (Requires.private), libm and threads.
if(IS_ABSOLUTE "${CMAKE_INSTALL_LIBDIR}")
    set(NABLA_PC_PREFIX "${CMAKE_INSTALL_PREFIX}")
    set(NABLA_PC_LIBDIR "${CMAKE_INSTALL_LIBDIR}")
else()
    file(RELATIVE_PATH _up "/${CMAKE_INSTALL_LIBDIR}/pkgconfig" "/")
    string(REGEX REPLACE "/$" "" _up "${_up}")
    set(NABLA_PC_PREFIX "\${pcfiledir}/${_up}")
    set(NABLA_PC_LIBDIR "\${prefix}/${CMAKE_INSTALL_LIBDIR}")
endif()
if(IS_ABSOLUTE "${CMAKE_INSTALL_INCLUDEDIR}")
    set(NABLA_PC_INCLUDEDIR "${CMAKE_INSTALL_INCLUDEDIR}")
else()
    set(NABLA_PC_INCLUDEDIR "\${prefix}/${CMAKE_INSTALL_INCLUDEDIR}")
endif()
# pkg-config modules a static link needs: BLAS (when it has a module), zlib and jansson
set(_nabla_pc_modules ${NABLA_BLAS_PC} zlib jansson)
list(JOIN _nabla_pc_modules " " _nabla_pc_modules)
set(NABLA_PC_REQUIRES "Requires.private: ${_nabla_pc_modules}")
set(NABLA_PC_LIBS_PRIVATE "${NABLA_BLAS_PC_LIBS}")
if(NABLA_LIBM)
    string(APPEND NABLA_PC_LIBS_PRIVATE " -lm")
endif()
if(CMAKE_THREAD_LIBS_INIT)
    string(APPEND NABLA_PC_LIBS_PRIVATE " ${CMAKE_THREAD_LIBS_INIT}")
endif()
string(STRIP "${NABLA_PC_LIBS_PRIVATE}" NABLA_PC_LIBS_PRIVATE)
configure_file(cmake/nabla.pc.in "${PROJECT_BINARY_DIR}/nabla.pc" @ONLY)
install(FILES "${PROJECT_BINARY_DIR}/nabla.pc"
    DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig COMPONENT Development)
