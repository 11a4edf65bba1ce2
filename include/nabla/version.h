/**
 * @file
 * nabla — the version of the headers and of the library.
 *
 * The NB_VERSION_* macros are the version of the headers a program was compiled with;
 * nb_version() is the version of the library it runs with. Within one major version the
 * library only adds functions, so a program runs with any library of its major version whose
 * minor version is at least the one it was compiled with (docs/install.md, "Versions").
 *
 *     if (strcmp(nb_version(), NB_VERSION_STRING) != 0)
 *         fprintf(stderr, "built with nabla %s, running with %s\n", NB_VERSION_STRING,
 *                 nb_version());
 */
#ifndef NABLA_VERSION_H
#define NABLA_VERSION_H

#include "export.h"

/** Major version: bumped by any change that breaks the API or the ABI (the SONAME's number). */
#define NB_VERSION_MAJOR 0
/** Minor version: bumped when functions are added, compatibly. */
#define NB_VERSION_MINOR 1
/** Patch version: bumped by fixes that change no interface. */
#define NB_VERSION_PATCH 0
/** The version as a string, "MAJOR.MINOR.PATCH". */
#define NB_VERSION_STRING                                                                          \
    NB__VERSION_STR(NB_VERSION_MAJOR)                                                              \
    "." NB__VERSION_STR(NB_VERSION_MINOR) "." NB__VERSION_STR(NB_VERSION_PATCH)
#define NB__VERSION_STR(x)  NB__VERSION_STR_(x)
#define NB__VERSION_STR_(x) #x
/** The version as one number, MAJOR·10000 + MINOR·100 + PATCH, for `#if NB_VERSION >= ...`. */
#define NB_VERSION (NB_VERSION_MAJOR * 10000 + NB_VERSION_MINOR * 100 + NB_VERSION_PATCH)

NB_BEGIN_DECLS

/**
 * The version of the library the program runs with, "MAJOR.MINOR.PATCH" (NB_VERSION_STRING
 * when the headers and the library match). PyTorch: torch.__version__.
 * Ownership: a static string; never NULL. Errors: none.
 */
NB_API const char *nb_version(void);

NB_END_DECLS

#endif /* NABLA_VERSION_H */
