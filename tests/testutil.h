/* Helpers shared by nabla's CMocka tests. */
#ifndef NABLA_TESTUTIL_H
#define NABLA_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <nabla/nabla.h>

/* Assert that the last error has this code and that its message contains text. */
#define assert_error(code, text) nbt_assert_error((code), (text), __FILE__, __LINE__)
void nbt_assert_error(nb_status code, const char *text, const char *file, int line);

/* Assert two float arrays agree within atol + rtol * |expected|. */
void nbt_assert_close(const float *got, const float *want, int64_t n, double atol, double rtol,
                      const char *file, int line);
#define assert_close(got, want, n, atol, rtol)                                                     \
    nbt_assert_close((got), (want), (n), (atol), (rtol), __FILE__, __LINE__)

/* A tensor's repr as a string (static buffer, valid until the next call). */
const char *nbt_repr(const nb_tensor *t);

/* Warnings: capture them instead of printing. */
void nbt_capture_warnings(void);
int nbt_warning_count(void);
const char *nbt_last_warning(void);

/* An allocator that fails the k-th allocation from now (k >= 1), or never (k = 0). */
void nbt_fail_alloc_after(long k);
/* The same allocator, failing the k-th allocation from now and every one after it. */
void nbt_fail_alloc_from(long k);
/* Whether the failing allocator has failed since nbt_fail_alloc_after. */
int nbt_alloc_failed(void);
/* Allocations made since nbt_fail_alloc_after, and blocks currently live. */
long nbt_alloc_count(void);
long nbt_alloc_live(void);

/* A tensor of shape dims holding a copy of v (fails the test when it cannot be made). */
nb_tensor *nbt_tensor_of(const float *v, int ndim, const int64_t *dims);
/* Fail the test, naming what, unless t is a tensor of shape want. */
void nbt_check_shape(const nb_tensor *t, nb_shape want, const char *what);
/*
 * Fail the k-th allocation of f(x) and its backward (for a random gradient, when f's output
 * requires grad) for k = 1, 2, ... until they go through: each failure must be NB_ENOMEM
 * naming fn (nb_backward for the backward's) and leave no block behind. x's .grad is reset.
 */
void nbt_oom_sweep(const char *fn, nb_tensor *(*f)(nb_tensor *x), nb_tensor *x);
/* A training step over the parameters p[0..np): its status. */
typedef nb_status (*nbt_step_fn)(nb_tensor *const *p);
/* Every allocation of body fails in turn: each failure is NB_ENOMEM with a one-line message
 * naming a public function, nothing leaks (the parameters' .grad cleared after each run), and
 * the run without a failure succeeds; more than 5 failures in all. */
void nbt_alloc_sweep(const char *name, nbt_step_fn body, nb_tensor *const *p, int np);

/* Per-test setup and teardown with the counting allocator (never failing): the teardown
 * fails the test when the number of live blocks is not back to nbt_live0, the count at
 * setup, and restores the default allocator. */
extern long nbt_live0;
int nbt_setup_counting(void **state);
int nbt_teardown_counting(void **state);

/* Standard per-test setup: clears the error, seeds 0, grad mode on. */
int nbt_setup(void **state);
int nbt_teardown(void **state);

/* The bytes of a file (malloc'd) and their number in *len; NULL (and 0) when it cannot be
 * opened. */
unsigned char *nbt_read_file(const char *path, size_t *len);
/* Write len bytes to path, replacing it (fails the test when it cannot). */
void nbt_write_file(const char *path, const void *data, size_t len);
/* A fresh directory under $TMPDIR (or /tmp) for one test (a static buffer: copy it to keep
 * it); nbt_rm_dir removes it and the files in it (one level). */
char *nbt_make_dir(void);
void nbt_rm_dir(const char *dir);
/* The names in dir but "." and "..", sorted, the first max of them into names; their count. */
int nbt_dir_entries(const char *dir, char names[][256], int max);

/* A growing in-memory sink for nb_safetensors_save_to: nbt_mem_write appends to data
 * (malloc'd; free() it), accepting at most fail_at bytes in all and then failing with ENOSPC
 * after a short write (SIZE_MAX: never fails). Start from NBT_MEMBUF. */
typedef struct nbt_membuf {
    unsigned char *data;
    size_t len, cap;
    size_t fail_at;
} nbt_membuf;
#define NBT_MEMBUF ((nbt_membuf){NULL, 0, 0, SIZE_MAX})
int nbt_mem_write(void *ctx, const void *data, size_t size);

/* The whole text of a file (malloc'd; fails the test when it cannot be read). */
char *nbt_read_text(const char *path);
/* The lines after start that begin with prefix, prefix removed, into out: from the first such
 * line to the next that does not (or, with end, to the line containing end). For checking
 * that a header's example is the code a test runs. */
void nbt_extract(const char *text, const char *start, const char *prefix, const char *end,
                 char *out, size_t size);

#endif
