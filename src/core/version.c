/* The library's version, compiled in so a program can compare it with its headers'. */
#include "nabla/version.h"

const char *nb_version(void)
{
    return NB_VERSION_STRING;
}
