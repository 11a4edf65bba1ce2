# CPack: `cpack -G DEB` in the build tree makes two Debian packages, as Debian splits a
# library: libnabla<major> (Runtime: libnabla.so.<major>*) and libnabla-dev (Development:
# headers, the libnabla.so link, libnabla.a, CMake and pkg-config files). Configure with
# -DCMAKE_INSTALL_PREFIX=/usr for Debian's multiarch layout (/usr/lib/<triple>); any other
# prefix installs the libraries in /usr/lib (the DEB generator installs under /usr).
set(CPACK_PACKAGE_NAME nabla)
set(CPACK_PACKAGE_VENDOR "nabla")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "${PROJECT_DESCRIPTION}")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_RESOURCE_FILE_README "${PROJECT_SOURCE_DIR}/README.md")
set(CPACK_PACKAGE_CONTACT "nabla maintainers <nabla@localhost>" CACHE STRING
    "Maintainer of the packages CPack makes")
set(CPACK_COMPONENTS_ALL Runtime Development)
set(CPACK_COMPONENT_RUNTIME_DESCRIPTION
    "nabla: a dense, BLAS-backed, reverse-mode autograd engine in C (shared library)")
set(CPACK_COMPONENT_DEVELOPMENT_DESCRIPTION
    "nabla: headers, static library, CMake package and pkg-config file")
set(CPACK_COMPONENT_DEVELOPMENT_DEPENDS Runtime)

set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_ENABLE_COMPONENT_DEPENDS ON)
set(CPACK_DEBIAN_RUNTIME_PACKAGE_NAME libnabla${PROJECT_VERSION_MAJOR})
set(CPACK_DEBIAN_RUNTIME_PACKAGE_SECTION libs)
set(CPACK_DEBIAN_DEVELOPMENT_PACKAGE_NAME libnabla-dev)
set(CPACK_DEBIAN_DEVELOPMENT_PACKAGE_SECTION libdevel)
# nabla.pc's Requires.private names the BLAS module, zlib and jansson (cmake/NablaInstall.cmake),
# and pkg-config reads those modules even for --cflags: the development package depends on
# the -dev packages that install them (openblas.pc/blis.pc/blas.pc, zlib.pc, jansson.pc).
set(_nb_dev_depends ${NABLA_BLAS_DEB} zlib1g-dev libjansson-dev)
list(JOIN _nb_dev_depends ", " CPACK_DEBIAN_DEVELOPMENT_PACKAGE_DEPENDS)
# The runtime's dependencies (libc, the BLAS library) come from dpkg-shlibdeps (dpkg-dev);
# its shlibs file lets packages built against it depend on libnabla0 (>= this version).
find_program(NABLA_DPKG_SHLIBDEPS dpkg-shlibdeps)
if(NABLA_DPKG_SHLIBDEPS)
    set(CPACK_DEBIAN_RUNTIME_PACKAGE_SHLIBDEPS ON)
endif()
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS ON)
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS_POLICY ">=")
# `cpack --config CPackSourceConfig.cmake` (make package_source): nabla-<version>.tar.gz, the
# source release that FetchContent and add_subdirectory users take.
set(CPACK_SOURCE_GENERATOR TGZ)
set(CPACK_SOURCE_PACKAGE_FILE_NAME nabla-${PROJECT_VERSION})
# Regular expressions, escaped twice: CPack writes them into CPackSourceConfig.cmake as is.
set(CPACK_SOURCE_IGNORE_FILES "/\\\\.git" "/build[^/]*/" "/out/" "/__pycache__/" "\\\\.dot$")
include(CPack)
