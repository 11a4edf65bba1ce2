/**
 * @file
 * nabla — errors, warnings, memory allocation and threads.
 *
 * Functions that return a tensor return NULL on error; the others return an nb_status.
 * In both cases the thread's last error says what went wrong in one line that names the
 * function:
 *
 *     nb_tensor *z = nb_matmul(x, w);
 *     if (!z) fprintf(stderr, "%s\n", nb_last_error()->message);
 *     // nb_matmul: size mismatch, [5] @ [4, 3] (5 != 4)
 *
 * A function given a NULL tensor returns NULL (or an error status) and keeps the error that
 * produced the NULL, so a chain of calls needs one check, at the end. The library never
 * aborts, exits or prints on a user error; warnings go through a replaceable handler.
 *
 * Conventions of every header's function comments:
 * - "PyTorch:" names the counterpart; "Ownership:" says who owns what is returned.
 * - Tensor arguments are borrowed, except by nb_release, which drops the caller's reference.
 * - In an "Errors:" line, "NB_EINVAL for NULL t" (a tensor or node argument) means NB_EINVAL
 *   only when no error is pending; otherwise the pending error is kept and returned. An
 *   error is pending from when it is recorded until nb_last_error() returns it (or
 *   nb_error_clear() clears it): an error the program has read is never reported again as
 *   the cause of a later NULL. Other NULL arguments (scopes, buffers, files, out-pointers)
 *   always record NB_EINVAL.
 * - An optional tensor argument (a loss's weight, backward's grad, a generator) may be NULL
 *   for "absent"; while an error is pending, a NULL there is taken as the failed result of
 *   an earlier call and the function fails with that error.
 */
#ifndef NABLA_ERROR_H
#define NABLA_ERROR_H

#include <stddef.h>
#include <stdint.h>

#include "export.h"

NB_BEGIN_DECLS

/** Result codes. 0 is success; every error is negative. */
typedef enum nb_status {
    NB_OK = 0,      /**< success */
    NB_EINVAL = -1, /**< an invalid argument: NULL, out of range, wrong kind */
    NB_ESHAPE = -2, /**< shapes that do not fit together */
    NB_ENOMEM = -3, /**< an allocation failed */
    NB_EIO = -4,    /**< reading or writing a file failed */
    NB_ESTATE = -5, /**< the call is not valid in the object's current state */
    NB_ERANGE = -6, /**< a size or index outside the representable range */
    NB_ECHECK = -7, /**< a check found values that disagree (nb_gradcheck) */
} nb_status;

/** The last error of the calling thread. */
typedef struct nb_error {
    nb_status code; /**< NB_OK when no error has been recorded since the last clear */
    /** one line, "function: cause", without control characters, at most 511 bytes (a longer
        one is cut before the character that would be split; at 63 bytes in a thread whose
        512-byte message buffer could not be allocated); "" when code is NB_OK */
    const char *message;
} nb_error;

/**
 * The calling thread's last error. Errors are sticky: a successful call does not clear
 * them; nb_error_clear() does. Reading the error marks it read (no longer pending), so a
 * NULL passed to a later call is reported as that call's own error.
 * PyTorch: none (it raises an exception instead).
 * Ownership: borrowed; valid until the thread's next nabla call. Never NULL.
 * Errors: none.
 */
NB_API const nb_error *nb_last_error(void);

/**
 * Reset the calling thread's last error to NB_OK (message ""). PyTorch: none.
 * Ownership: none. Errors: none.
 */
NB_API void nb_error_clear(void);

/**
 * A short constant name for a status code ("NB_ESHAPE"); "NB_E?" for an unknown code.
 * PyTorch: none. Ownership: a static string; never NULL. Errors: none.
 */
NB_API const char *nb_status_name(nb_status status);

/** A warning handler receives one line of text, without a trailing newline. */
typedef void (*nb_warning_fn)(const char *message, void *ctx);

/**
 * Replace the process-wide warning handler; fn receives ctx with each line. NULL restores the
 * default, which writes the line to stderr followed by a newline. Not synchronised: set it
 * before other threads use nabla. PyTorch: warnings.showwarning.
 * Ownership: ctx is borrowed; it must stay valid while fn is installed. Errors: none.
 */
NB_API void nb_set_warning_handler(nb_warning_fn fn, void *ctx);

/**
 * A memory allocator. alloc returns a block of at least size bytes aligned to align (a
 * power of two, at most 64), or NULL; free releases a block returned by alloc (never NULL).
 */
typedef struct nb_allocator {
    /** A block of at least size bytes aligned to align, or NULL. */
    void *(*alloc)(size_t size, size_t align, void *ctx);
    /** Release a block that alloc returned (never called with NULL). */
    void (*free)(void *ptr, void *ctx);
    /** Passed to alloc and free. */
    void *ctx;
} nb_allocator;

/**
 * Replace the process-wide allocator used for every allocation nabla makes (tensors, data,
 * graph nodes, scopes), except two per-thread buffers that live as long as their thread and
 * come from the C library: the default allocator's cache table and the error message. NULL, or
 * an allocator whose alloc or free is NULL, restores the default, which takes blocks from the
 * C library and keeps freed ones in a per-thread cache by size class (blocks up to 64 MiB, at
 * most 64 MiB a thread, returned when the thread or the process exits), so a warm training
 * step does not call malloc. AddressSanitizer builds (NB_SANITIZE with address) cache nothing.
 * Change the allocator only while no nabla object is alive: each block must be freed by the
 * allocator that made it. PyTorch: none (c10::SetAllocator). Ownership: *allocator is copied;
 * its ctx is borrowed while the allocator is installed. Errors: none.
 */
NB_API void nb_set_allocator(const nb_allocator *allocator);

/** What nabla's allocations did on one thread (see nb_alloc_stats_get). */
typedef struct nb_alloc_stats {
    /** Blocks nabla allocated, through whichever allocator is installed. */
    uint64_t allocs;
    /** Blocks nabla freed. */
    uint64_t frees;
    /** Calls the default allocator made to the C library: the allocations its block cache
     * could not serve (aligned_alloc), and the cache's own table, made once per thread at
     * its first free that can be cached (calloc); 0 under another allocator. */
    uint64_t system_allocs;
    /** Of the frees, those the default allocator gave back to the C library (its cache was
     * full, or the block too large to cache). */
    uint64_t system_frees;
    /** Bytes held in the thread's block cache now. */
    size_t cached_bytes;
} nb_alloc_stats;

/**
 * The calling thread's allocation counts since it started (each thread counts its own; a
 * block freed on another thread counts there). Subtract two readings to see what a piece of
 * code did: a warm training step of nabla-train makes system_allocs grow by 0.
 * PyTorch: none (torch.cuda.memory_stats for its CUDA caching allocator).
 * Ownership: *out is written. Errors: none (a NULL out does nothing).
 */
NB_API void nb_alloc_stats_get(nb_alloc_stats *out);

/**
 * Set the process-wide number of threads nabla computes with (at least 1): its pool of n − 1
 * workers and the calling thread run the large matrix products, cut into blocks of the
 * result by their shape alone (each a single-threaded BLAS call), the optimizers' updates,
 * and, of 131 072 elements or more, elementwise ops, softmax, log_softmax, cross_entropy,
 * binary_cross_entropy_with_logits, layer_norm, reductions by rows and sums (along dims, or
 * into one value by chunks that follow the size alone), cut into parts whose outputs each
 * depend on their own inputs alone; results are bit-identical for every n. nabla sets OpenBLAS to
 * one thread of its own (openblas_set_num_threads(1), when the BLAS library provides it) before its
 * first BLAS call; with another BLAS, set that library to one thread. Idle workers spin briefly,
 * then sleep. Call it while no other thread is inside a nabla call that computes. PyTorch:
 * torch.set_num_threads. Ownership: none. Errors: NB_EINVAL when n < 1 (nothing changes).
 */
NB_API nb_status nb_set_num_threads(int n);

/**
 * The number set by nb_set_num_threads; before any such call, the number of online
 * processors (at least 1), which the pool then uses. PyTorch: torch.get_num_threads.
 * Ownership: none. Errors: none.
 */
NB_API int nb_get_num_threads(void);

NB_END_DECLS

#endif /* NABLA_ERROR_H */
