/*
 * Internal definitions shared by nabla's source files: the tensor and storage structs, the
 * allocator, error reporting, scopes and the generator. Never installed.
 */
#ifndef NABLA_CORE_INTERNAL_H
#define NABLA_CORE_INTERNAL_H

#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "nabla/tensor.h"

#if defined(__GNUC__)
#define NB__PRINTF(f, a) __attribute__((format(printf, f, a)))
#define NB__LIKELY(x)    __builtin_expect(!!(x), 1)
#define NB__UNLIKELY(x)  __builtin_expect(!!(x), 0)
#else
#define NB__PRINTF(f, a)
#define NB__LIKELY(x)   (x)
#define NB__UNLIKELY(x) (x)
#endif

/*
 * Small, hot thread-locals use the initial-exec TLS model: one register-relative load instead
 * of a __tls_get_addr call per access from a shared library. One such variable puts all of
 * the library's thread-locals, whatever their model, in the static TLS area, of which glibc
 * keeps about 1.6 KiB for libraries loaded with dlopen: keep them to a few hundred bytes in
 * all (384 now), with larger per-thread state on the heap behind a pointer (the error text,
 * NB_SEQUENTIAL's frames). tests/static_tls.c loads the library after 1 KiB of others.
 */
#if defined(__GNUC__)
#define NB__TLS _Thread_local __attribute__((tls_model("initial-exec")))
#else
#define NB__TLS _Thread_local
#endif

/*
 * Hot loops (the elementwise kernels, the reductions, the optimizers' updates) are compiled
 * three times, for baseline x86-64 (SSE2), x86-64-v3 (AVX2 and FMA) and x86-64-v4
 * (AVX-512), and the loader picks the one the CPU runs (an ifunc), so the shipped library
 * needs no -march. Every copy gives the same bits: the library is built with
 * -ffp-contract=off (a copy fuses only what fmaf asks for) and without reassociation, so
 * wider vectors change how many elements a step computes, not what each one is.
 * NB_NO_CLONES, clang (whose version 14 makes the ifunc resolver of a static function a
 * global symbol, so two files' copy_k collide) and other CPUs leave one baseline copy.
 */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(NB_NO_CLONES) &&   \
    defined(__has_attribute)
#if __has_attribute(target_clones)
#define NB__CLONES      __attribute__((target_clones("default", "arch=x86-64-v3", "arch=x86-64-v4")))
#define NB__HAVE_CLONES 1
#endif
#endif
#ifndef NB__CLONES
#define NB__CLONES
#endif

/** Data buffers are aligned to this many bytes. */
#define NB__ALIGN 64

/* ---- memory ---------------------------------------------------------------------------- */

/** Allocate through the current allocator; NULL on failure (no error is set). */
void *nb__alloc(size_t size, size_t align);
void nb__free(void *ptr);
/** nb__free for a block not to be kept in the default allocator's cache (scratch used once). */
void nb__free_uncached(void *ptr);
/** Allocate zeroed memory for an object; NULL on failure. */
void *nb__calloc(size_t size);
/** Grow *arr (elements of elem bytes, *cap of them) to hold at least need; false on OOM. */
bool nb__grow(void **arr, size_t elem, size_t *cap, size_t need);
/** nb__grow for an array that may still live in inline_buf, which is never freed. */
bool nb__grow_inline(void **arr, size_t elem, size_t *cap, size_t need, const void *inline_buf);

/* ---- errors ---------------------------------------------------------------------------- */

/**
 * Record the calling thread's error as "fn: <formatted cause>" and return code.
 * NB_ENOMEM may be recorded with nb__oom, which never allocates.
 */
nb_status nb__error(nb_status code, const char *fn, const char *fmt, ...) NB__PRINTF(3, 4);
/** Record NB_ENOMEM for fn; returns NB_ENOMEM. */
nb_status nb__oom(const char *fn);
/**
 * A NULL argument named arg reached fn: keep the pending error (the one that made the NULL,
 * recorded and not yet read through nb_last_error) or, when none is, record NB_EINVAL.
 * Returns the recorded code.
 */
nb_status nb__null(const char *fn, const char *arg);
/**
 * The code of an error recorded and not yet read through nb_last_error() (pending), or NB_OK.
 * An optional argument that is NULL while an error is pending is the failed result of an
 * earlier call, not "absent": the op fails with that error.
 */
nb_status nb__pending(void);
/** The code of the last error recorded, without marking it read (for nabla's own use). */
nb_status nb__last_code(void);
/** Emit a warning line "fmt..." through the warning handler. */
void nb__warn(const char *fmt, ...) NB__PRINTF(1, 2);

/** "[5, 3]" into buf (which must hold NB__SHAPE_STR bytes). Returns buf. */
#define NB__SHAPE_STR (NB_MAX_DIMS * 22 + 4)
const char *nb__shape_str(char *buf, int ndim, const int64_t *dims);

/* ---- tensors --------------------------------------------------------------------------- */

typedef struct nb_storage {
    float *data;
    int64_t numel; /* capacity in elements */
    int64_t refcount;
    uint64_t version; /* bumped by every in-place change */
    uint64_t zeroed;  /* version + 1 when nb_zero_grad filled it with zeros, so unchanged since
                         while it still is; otherwise anything else (the engine's test) */
} nb_storage;

/*
 * What a layer above core attaches to a tensor (the autograd layer: requires_grad, grad,
 * grad_fn). Core knows only this header and calls the behaviour the owner registered with
 * it; a plain tensor has none (meta NULL). The owner's struct starts with this one.
 */
typedef struct nb__meta nb__meta;
typedef struct nb__meta_ops {
    /** t is being freed: drop what the meta holds and free it. */
    void (*free)(nb_tensor *t);
    /** Error (recorded for fn) unless t may be written in place now. */
    nb_status (*check_write)(const char *fn, const nb_tensor *t);
    /** For printing: the name of t's grad_fn (NULL for none) and whether t requires grad. */
    void (*describe)(const nb_tensor *t, const char **grad_fn_name, bool *requires_grad);
} nb__meta_ops;
struct nb__meta {
    const nb__meta_ops *ops;
};

struct nb_tensor {
    int64_t refcount;
    int ndim;
    int64_t shape[NB_MAX_DIMS];
    int64_t numel;
    nb_storage *storage;
    int64_t offset; /* in elements, into storage->data */

    /* scope that owns the creation reference, and its slot there */
    nb_scope *scope;
    size_t scope_slot;

    nb__meta *meta; /* NULL for a plain tensor */
    /* Room the meta's owner may use for it instead of an allocation (opaque to core): a
     * tensor that joins a graph then costs no extra allocation, and setting requires_grad
     * cannot fail. */
    uint64_t meta_space[5];
};

/* Reference counts change through const pointers (as a const object may still be shared). */
/* The bits of a float and back, for selects that keep float operations unconditional. */
static inline uint32_t nb__bits(float x)
{
    uint32_t b;
    memcpy(&b, &x, sizeof b);
    return b;
}

static inline float nb__from_bits(uint32_t b)
{
    float x;
    memcpy(&x, &b, sizeof x);
    return x;
}

static inline nb_tensor *nb__unconst(const nb_tensor *t)
{
    union {
        const nb_tensor *c;
        nb_tensor *m;
    } u = {t};
    return u.m;
}

static inline nb_storage *nb__unconst_storage(const nb_storage *s)
{
    union {
        const nb_storage *c;
        nb_storage *m;
    } u = {s};
    return u.m;
}

static inline float *nb__data(const nb_tensor *t)
{
    return t->storage->data + t->offset;
}

/** The shape of ndim (valid) sizes from dims: nb_shape_make, inlined for hot paths. */
static inline nb_shape nb__shape(int ndim, const int64_t *dims)
{
    nb_shape s = {ndim, {0}};
    for (int i = 0; i < ndim; i++) s.dims[i] = dims[i];
    return s;
}
/*
 * a·b for two sizes of one tensor, or 0 when that overflows: only a tensor with no element
 * has sizes that multiply past INT64_MAX ([0, 2^40, 2^40] is valid), and the loops such a
 * product bounds must then run no times.
 */
static inline int64_t nb__size_mul(int64_t a, int64_t b)
{
    return b != 0 && a > INT64_MAX / b ? 0 : a * b;
}

/** t's shape as a value (t not NULL). */
static inline nb_shape nb__size(const nb_tensor *t)
{
    return nb__shape(t->ndim, t->shape);
}

/**
 * Validate ndim/dims for fn and compute the element count into *numel (overflow-checked).
 * Returns NB_OK or the recorded error.
 */
nb_status nb__check_shape(const char *fn, int ndim, const int64_t *dims, int64_t *numel);
/** A new tensor with fresh uninitialised storage; registered with the current scope. */
nb_tensor *nb__new(const char *fn, int ndim, const int64_t *dims);
/** A new tensor viewing storage (retained) at offset; registered with the current scope. */
nb_tensor *nb__new_view(const char *fn, nb_storage *storage, int64_t offset, int ndim,
                        const int64_t *dims);
/** Free a tensor whose last reference is gone (the slow path of nb_release). */
void nb__tensor_free(nb_tensor *t);
/** nb_release, inlined into nabla's own code: most calls only decrement or see NULL. */
static inline void nb__release(nb_tensor *t)
{
    if (t && --t->refcount == 0) nb__tensor_free(t);
}
/**
 * Drop a creation reference that internal code holds: take t out of its scope (if one owns
 * it), then release. Use for internal temporaries; nb_release for references you retained.
 */
void nb__drop(nb_tensor *t);
/** Normalise dim into [0, ndim) (a 0-d tensor accepts 0 and -1); -1 if out of range. */
int nb__wrap_dim(int dim, int ndim);
/** Record PyTorch's "dimension out of range" error for dim, valid dims being [lo, hi]. */
nb_status nb__dim_error(const char *fn, int dim, int lo, int hi);
/**
 * The mask of the dims listed in dims for a tensor of ndim dims (bit d for dim d; every dim
 * for NB_DIMS_ALL; a 0-d tensor takes 0 and -1, which give an empty mask). Errors, recorded
 * for fn: NB_EINVAL for an empty list, a count outside [0, NB_MAX_DIMS], a dim out of range
 * or listed twice.
 */
nb_status nb__dims_mask(const char *fn, nb_dims dims, int ndim, unsigned *mask);
/**
 * The one check of every in-place write (ops, nb_tensor_set, random fills): error for fn
 * unless t may be written now, as the layer that owns t's meta decides (a tensor that is
 * part of a graph, or a leaf that requires grad, while grad mode is on). NB_OK for plain t.
 */
static inline nb_status nb__check_inplace(const char *fn, const nb_tensor *t)
{
    return t->meta ? t->meta->ops->check_write(fn, t) : NB_OK;
}
/** Two shapes are equal. */
bool nb__same_shape(const nb_tensor *a, const nb_tensor *b);
/** Whether a and b (contiguous) share an element of one storage. */
static inline bool nb__overlaps(const nb_tensor *a, const nb_tensor *b)
{
    return a->storage == b->storage && a->offset < b->offset + b->numel &&
           b->offset < a->offset + a->numel;
}
/**
 * Whether a write to a may read elements of b it has already overwritten: the two share some
 * elements of one storage, not all (a op= a, the same elements in the same shape, is fine).
 */
static inline bool nb__partly_overlaps(const nb_tensor *a, const nb_tensor *b)
{
    return nb__overlaps(a, b) && !(a->offset == b->offset && nb__same_shape(a, b));
}

/* ---- scopes ---------------------------------------------------------------------------- */

/** Register t's creation reference with the innermost scope, if any. false on OOM. */
bool nb__scope_track(nb_tensor *t);
/** Forget t in its scope (called when t is freed or kept). */
void nb__scope_untrack(nb_tensor *t);
/** Suspend scope tracking (engine-internal tensors); returns the token for resume. */
nb_scope *nb__scope_suspend(void);
void nb__scope_resume(nb_scope *token);

/* ---- threads --------------------------------------------------------------------------- */

/** Set by nb_set_num_threads; read by loops that parallelise. */
int nb__num_threads(void);
/**
 * Take lock across fork (pthread_atfork: locked before, unlocked after in parent and child), so
 * that a child, which has only the forking thread, never starts with it held by another. For
 * locks held a long time by other threads (a draw holds its generator's for a whole fill);
 * called from constructors, at most NB__FORK_LOCKS of them, never nested with each other.
 */
#define NB__FORK_LOCKS 4
void nb__lock_across_fork(pthread_mutex_t *lock);

/**
 * nb_state_dict_set for a name that d does not hold, without looking for it: a loader whose
 * names are known to be distinct adds n tensors in O(n), not O(n^2). NB_ENOMEM only.
 */
nb_status nb__state_dict_append(nb_state_dict *d, const char *name, nb_tensor *t);
/** The same for nb_state_dict_set_metadata and a key that d does not hold. */
nb_status nb__state_dict_append_metadata(nb_state_dict *d, const char *key, const char *value);
/** The value of metadata entry i (nb_state_dict_metadata_key's), without a search by key. */
const char *nb__state_dict_metadata_value(const nb_state_dict *d, int64_t i);

/** The system's text for errno value err, into buf (n bytes). Returns buf. */
const char *nb__errno_str(int err, char *buf, size_t n);

/*
 * A file written in place of path (core/file.c): a temporary file next to it, synced and
 * renamed over it by commit, so a failed save leaves the old file as it was. A symbolic link
 * at path is followed; a target that exists and is not a regular file is refused. Every
 * opened one ends with commit or abort (abort is harmless after either).
 */
#define NB__PATH_MAX 4096 /* PATH_MAX on Linux; core/file.c checks it */
typedef struct nb__file_out {
    int fd;
    const char *path;             /* as the caller named it, for messages */
    char *tmp;                    /* the temporary file's name */
    uint64_t written;             /* bytes that reached the file */
    char target[NB__PATH_MAX];    /* path, or what a symbolic link at path leads to */
    int old;                      /* in a group's commit: what became of the old file (file.c) */
    char kept[NB__PATH_MAX + 48]; /* the old file's second name while a group is renamed */
} nb__file_out;

nb_status nb__file_out_open(nb__file_out *f, const char *fn, const char *path);
/** An nb_write_fn: 0, or the errno value of the write that failed. */
int nb__file_out_write(void *f, const void *data, size_t size);
nb_status nb__file_out_commit(nb__file_out *f, const char *fn);
/**
 * Commit the n files of a group together: all are synced before any is renamed, and when a
 * rename fails, those renamed before it are put back as they were (the old file, kept
 * meanwhile under a second name by a hard link, or no file where there was none), so the group
 * replaces all its old files or none. Where no link can be made, or putting one back fails,
 * the error says which file could not be put back (and where its old version is kept).
 */
nb_status nb__file_out_commit_all(nb__file_out *const *f, int n, const char *fn);
void nb__file_out_abort(nb__file_out *f);
/**
 * Whether saves to paths a and b would write the same file (through links, other spellings
 * of the path, hard links; for files not there yet, the same name in the same directory).
 */
bool nb__same_file(const char *a, const char *b);

#endif /* NABLA_CORE_INTERNAL_H */
