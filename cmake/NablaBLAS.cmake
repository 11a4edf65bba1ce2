# Find BLAS and the cblas.h that belongs to the chosen vendor; defines nabla::blas.
#   BLA_VENDOR: OpenBLAS (default), FLAME (BLIS), Generic (the system's libblas), ...
if(NOT DEFINED BLA_VENDOR)
    set(BLA_VENDOR OpenBLAS CACHE STRING "BLAS vendor for FindBLAS (OpenBLAS, FLAME, Generic, ...)")
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
set(_nb_blas_libs ${BLAS_LIBRARIES})
include(CheckSymbolExists)
include(CMakePushCheckState)
cmake_push_check_state(RESET)
set(CMAKE_REQUIRED_INCLUDES ${NABLA_CBLAS_INCLUDE_DIR})
set(CMAKE_REQUIRED_LIBRARIES ${_nb_blas_libs})
check_symbol_exists(cblas_sgemm "cblas.h" NABLA_HAVE_CBLAS_IN_BLAS)
if(NOT NABLA_HAVE_CBLAS_IN_BLAS)
    find_library(NABLA_CBLAS_LIBRARY NAMES cblas)
    if(NABLA_CBLAS_LIBRARY)
        list(APPEND _nb_blas_libs ${NABLA_CBLAS_LIBRARY})
    else()
        message(FATAL_ERROR "nabla: ${BLAS_LIBRARIES} has no cblas_sgemm and no libcblas was found")
    endif()
endif()
set(CMAKE_REQUIRED_LIBRARIES ${_nb_blas_libs})
check_symbol_exists(openblas_set_num_threads "cblas.h" NABLA_HAVE_OPENBLAS_SET_NUM_THREADS)
cmake_pop_check_state()

add_library(nabla_blas INTERFACE)
target_include_directories(nabla_blas INTERFACE "$<BUILD_INTERFACE:${NABLA_CBLAS_INCLUDE_DIR}>")
target_link_libraries(nabla_blas INTERFACE "$<BUILD_INTERFACE:${_nb_blas_libs}>")
message(STATUS "nabla: BLAS ${BLA_VENDOR}: ${_nb_blas_libs}; cblas.h in ${NABLA_CBLAS_INCLUDE_DIR}")
