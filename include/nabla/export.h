/**
 * @file
 * nabla — export macro and common definitions shared by every public header.
 *
 * A program that links the static library may define NB_STATIC_DEFINE before including
 * nabla's headers (CMake's nabla::nabla and `pkg-config --static` do); it only matters on
 * Windows, where a DLL's functions are imported differently.
 */
#ifndef NABLA_EXPORT_H
#define NABLA_EXPORT_H

/**
 * @def NB_API
 * Marks a public function: the only symbols the shared library exports (it is built with
 * hidden visibility). Empty for the static library (NB_STATIC_DEFINE).
 */
#if defined(NB_STATIC_DEFINE)
#define NB_API
#elif defined(_WIN32)
#if defined(NB_BUILDING)
#define NB_API __declspec(dllexport)
#else
#define NB_API __declspec(dllimport)
#endif
#elif defined(__GNUC__) && __GNUC__ >= 4
#define NB_API __attribute__((visibility("default")))
#else
#define NB_API
#endif

/**
 * @def NB_BEGIN_DECLS
 * Opens the declarations of a header: `extern "C" {` in C++, nothing in C.
 * @def NB_END_DECLS
 * Closes what NB_BEGIN_DECLS opened.
 */
#ifdef __cplusplus
#define NB_BEGIN_DECLS extern "C" {
#define NB_END_DECLS   }
#else
#define NB_BEGIN_DECLS
#define NB_END_DECLS
#endif

#endif /* NABLA_EXPORT_H */
