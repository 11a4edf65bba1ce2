/* nabla — export macro and common definitions shared by every public header. */
#ifndef NABLA_EXPORT_H
#define NABLA_EXPORT_H

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

#ifdef __cplusplus
#define NB_BEGIN_DECLS extern "C" {
#define NB_END_DECLS   }
#else
#define NB_BEGIN_DECLS
#define NB_END_DECLS
#endif

#endif /* NABLA_EXPORT_H */
