# Shared by the consumer projects: nabla::nabla is the kind of library EXPECT names.
if(EXPECT)
    get_target_property(_type nabla::nabla TYPE)
    if(NOT _type STREQUAL EXPECT)
        message(FATAL_ERROR "nabla::nabla is a ${_type}, expected ${EXPECT}")
    endif()
    message(STATUS "nabla::nabla is a ${_type}")
endif()
