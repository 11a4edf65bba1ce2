# Find BLAS and the cblas.h that belongs to the chosen vendor.
#   BLA_VENDOR: OpenBLAS (default), FLAME (BLIS), Generic (the system's libblas), ...
# Defines NABLA_BLAS_LINK (what the library links: BLAS::BLAS, plus libcblas where the vendor
# keeps CBLAS apart), NABLA_CBLAS_INCLUDE_DIR, the build-only interface target nabla_blas (for
# programs of this tree that call CBLAS themselves), and for the installed files:
# NABLA_BLAS_PC (the pkg-config module of that BLAS, or empty), NABLA_BLAS_PC_LIBS (-l flags
# when there is no module) and NABLA_BLAS_DEB (the Debian package that provides it).
if(NOT DEFINED BLA_VENDOR AND PROJECT_IS_TOP_LEVEL)
    set(BLA_VENDOR OpenBLAS CACHE STRING "BLAS vendor for FindBLAS (OpenBLAS, FLAME, Generic, ...)")
elseif(NOT DEFINED BLA_VENDOR) # a subproject: the default stays in nabla's directory, so that
    set(BLA_VENDOR OpenBLAS)   # the parent's own find_package(BLAS) keeps its own default
endif()

find_package(BLAS)
if(NOT BLAS_FOUND)
    message(FATAL_ERROR
        "nabla: no BLAS library found for BLA_VENDOR=${BLA_VENDOR}. "
        "On Debian/Ubuntu: apt-get install libopenblas-dev "
        "(or libblis-dev with -DBLA_VENDOR=FLAME, libblas-dev with -DBLA_VENDOR=Generic).")
endif()

set(_nb_cblas_hints)
foreach(_lib IN LISTS BLAS_LIBRARIES)
    get_filename_component(_real "${_lib}" REALPATH)
    get_filename_component(_dir "${_real}" DIRECTORY)
    get_filename_component(_name "${_dir}" NAME)
    # Debian: /usr/lib/<triple>/openblas-pthread/libopenblas.so → /usr/include/<triple>/openblas-pthread
    get_filename_component(_triple_dir "${_dir}" DIRECTORY)
    get_filename_component(_triple "${_triple_dir}" NAME)
    list(APPEND _nb_cblas_hints "/usr/include/${_triple}/${_name}" "/usr/include/${_name}")
endforeach()
if(BLA_VENDOR STREQUAL "OpenBLAS")
    list(APPEND _nb_cblas_hints /usr/include/openblas)
elseif(BLA_VENDOR STREQUAL "FLAME")
    list(APPEND _nb_cblas_hints /usr/include/blis)
endif()

find_path(NABLA_CBLAS_INCLUDE_DIR cblas.h HINTS ${_nb_cblas_hints})
if(NOT NABLA_CBLAS_INCLUDE_DIR)
    message(FATAL_ERROR
        "nabla: cblas.h not found for BLA_VENDOR=${BLA_VENDOR}. "
        "On Debian/Ubuntu: apt-get install libopenblas-dev")
endif()

# Generic reference BLAS keeps the CBLAS interface in a separate library.
set(NABLA_BLAS_LINK BLAS::BLAS)
include(CheckSymbolExists)
include(CMakePushCheckState)
cmake_push_check_state(RESET)
set(CMAKE_REQUIRED_INCLUDES ${NABLA_CBLAS_INCLUDE_DIR})
set(CMAKE_REQUIRED_LIBRARIES ${BLAS_LIBRARIES})
check_symbol_exists(cblas_sgemm "cblas.h" NABLA_HAVE_CBLAS_IN_BLAS)
if(NOT NABLA_HAVE_CBLAS_IN_BLAS)
    find_library(NABLA_CBLAS_LIBRARY NAMES cblas)
    if(NABLA_CBLAS_LIBRARY)
        list(APPEND NABLA_BLAS_LINK ${NABLA_CBLAS_LIBRARY})
    else()
        message(FATAL_ERROR "nabla: ${BLAS_LIBRARIES} has no cblas_sgemm and no libcblas was found")
    endif()
endif()
set(CMAKE_REQUIRED_LIBRARIES ${BLAS_LIBRARIES} ${NABLA_CBLAS_LIBRARY})
check_symbol_exists(openblas_set_num_threads "cblas.h" NABLA_HAVE_OPENBLAS_SET_NUM_THREADS)
check_symbol_exists(openblas_get_config "cblas.h" NABLA_HAVE_OPENBLAS_GET_CONFIG)
cmake_pop_check_state()

add_library(nabla_blas INTERFACE)
target_include_directories(nabla_blas INTERFACE "${NABLA_CBLAS_INCLUDE_DIR}")
target_link_libraries(nabla_blas INTERFACE ${NABLA_BLAS_LINK})

# What a static libnabla.a needs at link time, for nabla.pc and the Debian package. Debian's
# libopenblas-dev, libblis-dev and libblas-dev install openblas.pc, blis.pc and blas.pc.
set(_nb_pc_modules OpenBLAS openblas FLAME blis Generic blas)
set(_nb_deb_packages OpenBLAS libopenblas-dev FLAME libblis-dev Generic libblas-dev)
list(FIND _nb_pc_modules "${BLA_VENDOR}" _i)
set(NABLA_BLAS_PC "")
set(NABLA_BLAS_DEB "")
if(_i GREATER_EQUAL 0)
    math(EXPR _i "${_i} + 1")
    list(GET _nb_pc_modules ${_i} _module)
    list(GET _nb_deb_packages ${_i} NABLA_BLAS_DEB)
    find_package(PkgConfig QUIET)
    if(PKG_CONFIG_FOUND)
        pkg_check_modules(_nb_blas_pc QUIET ${_module})
        if(_nb_blas_pc_FOUND)
            set(NABLA_BLAS_PC ${_module})
        endif()
    endif()
endif()
set(NABLA_BLAS_PC_LIBS "")
set(_nb_pc_libs ${NABLA_CBLAS_LIBRARY})
if(NOT NABLA_BLAS_PC)
    list(PREPEND _nb_pc_libs ${BLAS_LIBRARIES})
endif()
foreach(_lib IN LISTS _nb_pc_libs)
    if(_lib MATCHES "^-")
        string(APPEND NABLA_BLAS_PC_LIBS " ${_lib}")
    else()
        get_filename_component(_dir "${_lib}" DIRECTORY)
        get_filename_component(_name "${_lib}" NAME_WE)
        string(REGEX REPLACE "^lib" "" _name "${_name}")
        string(APPEND NABLA_BLAS_PC_LIBS " -L${_dir} -l${_name}")
    endif()
endforeach()
message(STATUS "nabla: BLAS ${BLA_VENDOR}: ${BLAS_LIBRARIES} ${NABLA_CBLAS_LIBRARY}; "
               "cblas.h in ${NABLA_CBLAS_INCLUDE_DIR}; pkg-config module '${NABLA_BLAS_PC}'")
