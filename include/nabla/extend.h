/**
 * @file
 * nabla — for libraries built on nabla: report errors and allocate memory the way nabla does.
 *
 * A library that adds functions of its own on top of nabla (nabla's MPI part, libnabla_dist,
 * is one) records its errors in nabla's thread-local last error, so that its users check one
 * error state and read one kind of message, and allocates through the allocator installed
 * with nb_set_allocator(), so that allocation-failure sweeps reach it too:
 *
 *     nb_status my_scale(nb_tensor *t, float s)
 *     {
 *         if (!t) return nb_error_null("my_scale", "t");   // keeps an earlier call's error
 *         if (!(s > 0))
 *             return nb_error_set(NB_EINVAL, "my_scale", "s must be positive, got %g", (double)s);
 *         ...
 *     }
 *
 * These are the rules nabla's own functions follow (error.h): one line "function: cause",
 * naming the public function the user called; a NULL argument while an error is pending
 * keeps that error.
 */
#ifndef NABLA_EXTEND_H
#define NABLA_EXTEND_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "tensor.h"

NB_BEGIN_DECLS

#if defined(__GNUC__)
#define NB__FORMAT(f, a) __attribute__((format(printf, f, a)))
#else
#define NB__FORMAT(f, a)
#endif

/**
 * Record the calling thread's last error as "fn: <cause>", the cause formatted from fmt as
 * printf does; newlines become spaces and the line is cut at 511 bytes. The error is then
 * pending (error.h). Needs no allocation. PyTorch: raising an exception (TORCH_CHECK).
 * Returns code.
 * Ownership: fn and fmt are read during the call.
 * Errors: records NB_EINVAL for nb_error_set itself (and returns it) when code is not
 * negative or fn or fmt is NULL.
 */
NB_API nb_status nb_error_set(nb_status code, const char *fn, const char *fmt, ...)
    NB__FORMAT(3, 4);

/**
 * Report that the argument named arg of fn is NULL: while an error is pending (the failure
 * that produced the NULL), keep it and return its code; otherwise record NB_EINVAL "fn:
 * argument 'arg' is NULL". PyTorch: none (None where a tensor is needed raises TypeError).
 * Ownership: none.
 * Errors: as described; NB_EINVAL for nb_error_null itself when fn or arg is NULL.
 */
NB_API nb_status nb_error_null(const char *fn, const char *arg);

/**
 * The code of the pending error (recorded and not yet read through nb_last_error()), or
 * NB_OK. An optional argument that is NULL while an error is pending is the failed result
 * of an earlier call: fail with this code. PyTorch: none. Ownership: none. Errors: none.
 */
NB_API nb_status nb_error_pending(void);

/**
 * A block of at least size bytes aligned to align (a power of two, at most 64; 0 means 16)
 * from the allocator nabla uses (nb_set_allocator); NULL when it fails, or for size 0 or
 * a bad align. No error is recorded: report NB_ENOMEM with nb_error_set. Free the block with
 * nb_free(). PyTorch: c10::GetCPUAllocator()->allocate.
 * Ownership: the caller's. Errors: none (NULL).
 */
NB_API void *nb_alloc(size_t size, size_t align);

/**
 * Free a block from nb_alloc(). PyTorch: none.
 * Ownership: consumes ptr. Errors: none; NULL is a no-op.
 */
NB_API void nb_free(void *ptr);

/**
 * A random permutation of 0..n-1 into out[0..n-1] as int64 indices, drawn from gen (NULL:
 * the default generator) exactly as nb_randperm draws it, without its 2^24 limit (which only
 * float32 values need): for samplers and shuffles of big datasets.
 * PyTorch: torch.randperm(n, generator=gen).tolist().
 * Ownership: out is the caller's, n entries.
 * Errors: NB_EINVAL when n < 0 or out is NULL with n > 0; the pending error when gen is
 * NULL while one is pending. Nothing is drawn on error.
 */
NB_API nb_status nb_randperm_into(int64_t n, nb_generator *gen, int64_t *out);

NB_END_DECLS

#endif /* NABLA_EXTEND_H */
