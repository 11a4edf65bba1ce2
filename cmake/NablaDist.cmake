# libnabla_dist: data-parallel training over MPI (include/nabla/dist.h, src/dist/). A library
# of its own on top of libnabla, built in each kind libnabla is built in (nabla_dist beside
# nabla, nabla_dist_static beside nabla_static, ...), exported as nabla::dist. It reaches
# libnabla through the public API only (nabla/extend.h for errors and memory); dist.h
# includes <mpi.h>, so MPI::MPI_C is part of its interface.
if(NOT MPI_C_FOUND)
    message(FATAL_ERROR "nabla: NB_DIST needs MPI for C. On Debian/Ubuntu: "
        "apt-get install libopenmpi-dev openmpi-bin (or configure with -DNB_DIST=OFF)")
endif()
file(GLOB NABLA_DIST_SOURCES CONFIGURE_DEPENDS "${PROJECT_SOURCE_DIR}/src/dist/*.c")

function(nabla_add_dist_library target type core)
    add_library(${target} ${type} ${NABLA_DIST_SOURCES})
    target_include_directories(${target} PRIVATE "${PROJECT_SOURCE_DIR}/src")
    target_link_libraries(${target} PUBLIC ${core} MPI::MPI_C)
    target_compile_definitions(${target} PRIVATE NB_BUILDING)
    set_target_properties(${target} PROPERTIES
        OUTPUT_NAME nabla_dist
        EXPORT_NAME dist
        C_VISIBILITY_PRESET hidden
        VISIBILITY_INLINES_HIDDEN ON)
    if(type STREQUAL "SHARED")
        set_target_properties(${target} PROPERTIES
            VERSION ${PROJECT_VERSION}
            SOVERSION ${PROJECT_VERSION_MAJOR})
    endif()
    nabla_set_warnings(${target})
endfunction()

# NABLA_DIST_SHARED_TARGET / NABLA_DIST_STATIC_TARGET: as NABLA_SHARED_TARGET / ..._STATIC_.
foreach(_kind SHARED STATIC)
    set(NABLA_DIST_${_kind}_TARGET "")
    if(NABLA_${_kind}_TARGET)
        string(REPLACE "nabla" "nabla_dist" NABLA_DIST_${_kind}_TARGET "${NABLA_${_kind}_TARGET}")
        nabla_add_dist_library(${NABLA_DIST_${_kind}_TARGET} ${_kind} ${NABLA_${_kind}_TARGET})
    endif()
endforeach()
add_library(nabla::dist ALIAS nabla_dist)

# How mpirun runs the tests and benchmarks on one machine: Open MPI wants leave to run as root
# (CI runs as root), more ranks than cores (oversubscribe, yielding while idle), shared memory
# only (no network in a container; no CMA, which containers often forbid), and no ssh. As
# environment variables, so that a command line stays the one users type.
set(NABLA_MPIEXEC_ENV "")
execute_process(COMMAND "${MPIEXEC_EXECUTABLE}" --version OUTPUT_VARIABLE _nb_mpiexec_version
    ERROR_QUIET)
if(_nb_mpiexec_version MATCHES "Open MPI|OpenRTE")
    set(NABLA_MPIEXEC_ENV
        OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
        OMPI_MCA_rmaps_base_oversubscribe=1 OMPI_MCA_mpi_yield_when_idle=1
        OMPI_MCA_btl=self,vader OMPI_MCA_btl_vader_single_copy_mechanism=none
        OMPI_MCA_pml=ob1 OMPI_MCA_plm=isolated)
endif()
# The same for scripts (scripts/bench_dist.sh sources it).
list(TRANSFORM NABLA_MPIEXEC_ENV PREPEND "export " OUTPUT_VARIABLE _nb_env_lines)
list(JOIN _nb_env_lines "\n" _nb_env_lines)
file(WRITE "${PROJECT_BINARY_DIR}/mpiexec-env.sh"
    "# How mpirun runs nabla's tests on one machine (cmake/NablaDist.cmake).\n${_nb_env_lines}\n")
