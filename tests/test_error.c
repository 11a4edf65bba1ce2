/*
 * Errors, warnings and the allocator: the thread-local last error (never NULL, one line that
 * names the function, sticky until cleared), status names, the warning handler and its
 * default, and an allocation-failure sweep over the core functions: each failure is
 * NB_ENOMEM "<function>: out of memory" and leaks nothing.
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <nabla/extend.h>

#include "testutil.h"

/* The last error is exactly this code and message. */
static void check_error_is(nb_status code, const char *message, const char *file, int line)
{
    const nb_error *e = nb_last_error();
    if (!e) fail_msg("%s:%d: nb_last_error() is NULL", file, line);
    if (e->code != code || !e->message || strcmp(e->message, message) != 0)
        fail_msg("%s:%d: error %s \"%s\", want %s \"%s\"", file, line, nb_status_name(e->code),
                 e->message ? e->message : "(null)", nb_status_name(code), message);
}
#define assert_error_is(code, message) check_error_is((code), (message), __FILE__, __LINE__)

/* ---- the error state ------------------------------------------------------------------- */

static void *fresh_thread_error(void *arg)
{
    nb_error *out = arg;
    const nb_error *e = nb_last_error();
    out->code = e ? e->code : NB_EIO;
    out->message = e && e->message && e->message[0] == '\0' ? "" : "not empty";
    return NULL;
}

static void test_initial_state(void **state)
{
    (void)state;
    /* a thread that never called nabla starts with no error */
    nb_error seen = {NB_EIO, NULL};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, fresh_thread_error, &seen), 0);
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_int_equal(seen.code, NB_OK);
    assert_string_equal(seen.message, "");

    nb_error_clear();
    assert_non_null(nb_last_error());
    assert_error_is(NB_OK, "");

    assert_null(nb_zeros(NB_SHAPE(-1)));
    assert_int_equal(nb_last_error()->code, NB_EINVAL);
    nb_error_clear();
    assert_error_is(NB_OK, "");
    nb_error_clear(); /* twice is fine */
    assert_error_is(NB_OK, "");
}

static void test_status_names(void **state)
{
    (void)state;
    assert_string_equal(nb_status_name(NB_OK), "NB_OK");
    assert_string_equal(nb_status_name(NB_EINVAL), "NB_EINVAL");
    assert_string_equal(nb_status_name(NB_ESHAPE), "NB_ESHAPE");
    assert_string_equal(nb_status_name(NB_ENOMEM), "NB_ENOMEM");
    assert_string_equal(nb_status_name(NB_EIO), "NB_EIO");
    assert_string_equal(nb_status_name(NB_ESTATE), "NB_ESTATE");
    assert_string_equal(nb_status_name(NB_ERANGE), "NB_ERANGE");
    assert_true(NB_OK == 0);
    assert_true(NB_EINVAL < 0 && NB_ESHAPE < 0 && NB_ENOMEM < 0 && NB_EIO < 0 && NB_ESTATE < 0 &&
                NB_ERANGE < 0);
    /* an unknown code still has a (non-NULL) name */
    const char *unknown = nb_status_name((nb_status)-99);
    assert_non_null(unknown);
    assert_true(unknown[0] != '\0');
    assert_non_null(nb_status_name((nb_status)1));
}

static void test_messages(void **state)
{
    (void)state;
    nb_tensor *m = nb_ones(NB_SHAPE(2, 3));
    float v = 0;
    const int64_t big[8] = {INT64_MIN, INT64_MIN, INT64_MIN, INT64_MIN,
                            INT64_MIN, INT64_MIN, INT64_MIN, INT64_MIN};
    nb_tensor *m3 = nb_ones(NB_SHAPE(1, 1, 1));
#define CHECK(call, fn_name, want_code)                                                            \
    do {                                                                                           \
        nb_error_clear();                                                                          \
        (void)(call);                                                                              \
        const nb_error *e_ = nb_last_error();                                                      \
        assert_int_equal(e_->code, (want_code));                                                   \
        size_t n_ = strlen(fn_name);                                                               \
        if (strncmp(e_->message, fn_name ": ", n_ + 2) != 0)                                       \
            fail_msg("message \"%s\" does not start with \"%s: \"", e_->message, fn_name);         \
        assert_true(strlen(e_->message) > n_ + 2);                                                 \
        assert_null(strchr(e_->message, '\n'));                                                    \
        assert_null(strchr(e_->message, '\r'));                                                    \
    } while (0)
    CHECK(nb_zeros(NB_SHAPE(-1)), "nb_zeros", NB_EINVAL);
    CHECK(nb_reshape(m, NB_SHAPE(4)), "nb_reshape", NB_ESHAPE);
    CHECK(nb_tensor_item(m, &v), "nb_tensor_item", NB_EINVAL);
    CHECK(nb_tensor_get(m, (const int64_t[]){2, 0}, &v), "nb_tensor_get", NB_ERANGE);
    CHECK(nb_squeeze(m, NB_DIMS(5)), "nb_squeeze", NB_EINVAL);
    CHECK(nb_permute(m, NB_DIMS(1, 1)), "nb_permute", NB_EINVAL);
    CHECK(nb_arange(0, 1, 0), "nb_arange", NB_EINVAL);
    CHECK(nb_linspace(0, 1, -2), "nb_linspace", NB_EINVAL);
    CHECK(nb_scope_end(NULL), "nb_scope_end", NB_EINVAL);
    CHECK(nb_scope_keep(m), "nb_scope_keep", NB_ESTATE);
    CHECK(nb_set_num_threads(0), "nb_set_num_threads", NB_EINVAL);
    CHECK(nb_empty(nb_shape_make(8, big)), "nb_empty", NB_EINVAL);
    CHECK(nb_full(NB_SHAPE(INT64_MAX, INT64_MAX, INT64_MAX), 1), "nb_full", NB_ERANGE);
    CHECK(nb_t(m3), "nb_t", NB_EINVAL);
    CHECK(nb_tensor_dim_size(m, 2), "nb_tensor_dim_size", NB_EINVAL);
    CHECK(nb_from_data(NULL, NB_SHAPE(1)), "nb_from_data", NB_EINVAL);
    CHECK(nb_transpose(NULL, 0, 1), "nb_transpose", NB_EINVAL);
#undef CHECK
    nb_release(m3);
    nb_release(m);

    /* the longest shape text is written whole */
    nb_error_clear();
    assert_null(nb_zeros(nb_shape_make(8, big)));
    const char *msg = nb_last_error()->message;
    assert_non_null(strstr(msg, "nb_zeros: negative dimension -9223372036854775808 in shape "
                                "[-9223372036854775808, "));
    assert_non_null(strstr(msg, "-9223372036854775808, -9223372036854775808]"));

    /* errors are sticky: a success does not clear them */
    nb_error_clear();
    assert_null(nb_reshape(NULL, NB_SHAPE(1)));
    nb_tensor *ok = nb_zeros(NB_SHAPE(2));
    assert_non_null(ok);
    assert_error_is(NB_EINVAL, "nb_reshape: argument 't' is NULL");
    nb_release(ok);
    assert_error_is(NB_EINVAL, "nb_reshape: argument 't' is NULL");

    /* a later error replaces an earlier one; a NULL argument keeps one not yet read */
    assert_null(nb_arange(0, 1, 0));
    assert_null(nb_clone(NULL));
    assert_error_is(NB_EINVAL, "nb_arange: step must be nonzero");
    /* an error that was read is not the cause of a later NULL */
    assert_null(nb_clone(NULL));
    assert_error_is(NB_EINVAL, "nb_clone: argument 't' is NULL");
}

/* ---- warnings -------------------------------------------------------------------------- */

typedef struct warnings {
    int count;
    char last[1024];
} warnings;

static void on_warning(const char *message, void *ctx)
{
    warnings *w = ctx;
    w->count++;
    snprintf(w->last, sizeof w->last, "%s", message);
}

static const char grad_warning[] =
    "nb_tensor_grad: warning: The .grad attribute of a Tensor that is not a leaf Tensor is "
    "being accessed.";

/* A non-leaf tensor: reading its .grad warns. */
static nb_tensor *non_leaf(nb_tensor **leaf)
{
    *leaf = nb_requires_grad_(nb_ones(NB_SHAPE(2)), true);
    nb_tensor *y = nb_mul_scalar(*leaf, 2.0f);
    assert_non_null(y);
    assert_false(nb_tensor_is_leaf(y));
    return y;
}

/* Whether s is well-formed UTF-8 (every sequence whole; the text here holds no overlongs). */
static bool whole_utf8(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p;) {
        int need = *p >= 0xF0 ? 3 : *p >= 0xE0 ? 2 : *p >= 0xC0 ? 1 : 0;
        if (*p >= 0x80 && *p < 0xC0) return false;
        p++;
        for (int k = 0; k < need; k++, p++)
            if ((*p & 0xC0) != 0x80) return false;
    }
    return true;
}

/*
 * A message longer than the 511 bytes kept is cut before a character the cut would split, so
 * that it stays UTF-8: characters of 2, 3 and 4 bytes, the cut at each of their bytes.
 */
static void test_long_message_utf8(void **state)
{
    (void)state;
    const char *chars[] = {"\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80"};
    char text[1200];
    for (int c = 0; c < 3; c++) {
        const size_t width = strlen(chars[c]);
        text[0] = '\0';
        while (strlen(text) + width < sizeof text) strcat(text, chars[c]);
        for (int pad = 0; pad < 4; pad++) {
            nb_error_set(NB_EINVAL, "my_op", "%.*s%s", pad, "xxx", text);
            const char *m = nb_last_error()->message;
            if (!whole_utf8(m)) fail_msg("%zu-byte characters, pad %d: cut inside one", width, pad);
            assert_true(strlen(m) <= 511);
            assert_true(strlen(m) > 511 - width); /* no more dropped than the split one */
            assert_int_equal(strncmp(m, "my_op: ", 7), 0);
        }
    }
}

static void test_warning_handler(void **state)
{
    (void)state;
    warnings w = {0, ""};
    nb_set_warning_handler(on_warning, &w);

    nb_tensor *x;
    nb_tensor *y = non_leaf(&x);
    assert_null(nb_tensor_grad(x)); /* a leaf: no warning */
    assert_int_equal(w.count, 0);
    assert_null(nb_tensor_grad(y));
    assert_int_equal(w.count, 1);
    assert_memory_equal(w.last, grad_warning, strlen(grad_warning));
    assert_null(strchr(w.last, '\n'));
    assert_true(w.last[strlen(w.last) - 1] != '\n');
    /* once per tensor; a warning is not an error */
    assert_null(nb_tensor_grad(y));
    assert_int_equal(w.count, 1);
    assert_error_is(NB_OK, "");
    nb_release(y);
    nb_release(x);

    /* NULL restores the default: the line and a newline on stderr */
    nb_set_warning_handler(NULL, NULL);
    y = non_leaf(&x);
    FILE *tmp = tmpfile();
    assert_non_null(tmp);
    fflush(stderr);
    int saved = dup(2);
    assert_true(saved >= 0);
    assert_true(dup2(fileno(tmp), 2) >= 0);
    nb_tensor *g = nb_tensor_grad(y);
    fflush(stderr);
    assert_true(dup2(saved, 2) >= 0);
    close(saved);
    assert_null(g);
    assert_int_equal(w.count, 1); /* the custom handler is gone */
    rewind(tmp);
    char text[2048] = "";
    size_t n = fread(text, 1, sizeof text - 1, tmp);
    fclose(tmp);
    text[n] = '\0';
    assert_true(n > sizeof grad_warning);
    assert_memory_equal(text, grad_warning, strlen(grad_warning));
    assert_true(text[n - 1] == '\n');
    assert_ptr_equal(strchr(text, '\n'), text + n - 1); /* exactly one line */
    nb_release(y);
    nb_release(x);

    /* the test utility's capture works the same way */
    nbt_capture_warnings();
    y = non_leaf(&x);
    assert_null(nb_tensor_grad(y));
    assert_int_equal(nbt_warning_count(), 1);
    assert_memory_equal(nbt_last_warning(), grad_warning, strlen(grad_warning));
    nb_release(y);
    nb_release(x);
}

/* ---- threads --------------------------------------------------------------------------- */

static void *other_thread_errors(void *arg)
{
    int *bad = arg;
    /* a fresh thread starts clean, whatever the main thread's error is */
    if (nb_last_error()->code != NB_OK || strcmp(nb_last_error()->message, "") != 0) (*bad)++;
    nb_tensor *x = nb_ones(NB_SHAPE(6));
    for (int i = 0; i < 2000; i++) {
        if (nb_reshape(x, NB_SHAPE(4)) != NULL) (*bad)++;
        if (strcmp(nb_last_error()->message,
                   "nb_reshape: shape '[4]' is invalid for input of size 6") != 0)
            (*bad)++;
        nb_error_clear();
        if (nb_last_error()->code != NB_OK) (*bad)++;
    }
    nb_release(x);
    assert_null(nb_arange(0, 1, 0)); /* leave an error behind */
    return NULL;
}

static void test_thread_local(void **state)
{
    (void)state;
    assert_null(nb_zeros(NB_SHAPE(-7)));
    const char *want = "nb_zeros: negative dimension -7 in shape [-7]";
    assert_error_is(NB_EINVAL, want);

    int bad[2] = {0, 0};
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&th[i], NULL, other_thread_errors, &bad[i]), 0);
    /* meanwhile, this thread keeps making and clearing its own errors */
    for (int i = 0; i < 2000; i++) {
        assert_null(nb_linspace(0, 1, -1));
        assert_error_is(NB_EINVAL, "nb_linspace: number of steps must be non-negative, got -1");
    }
    assert_null(nb_zeros(NB_SHAPE(-7)));
    for (int i = 0; i < 2; i++) assert_int_equal(pthread_join(th[i], NULL), 0);
    assert_int_equal(bad[0], 0);
    assert_int_equal(bad[1], 0);
    /* the other threads' last errors did not reach this one */
    assert_error_is(NB_EINVAL, want);
}

/* ---- allocation failures --------------------------------------------------------------- */

typedef struct sweep_case {
    const char *fn;
    nb_tensor *(*call)(nb_tensor *in);
} sweep_case;

static nb_tensor *call_empty(nb_tensor *in)
{
    (void)in;
    return nb_empty(NB_SHAPE(3, 4));
}
static nb_tensor *call_zeros(nb_tensor *in)
{
    (void)in;
    return nb_zeros(NB_SHAPE(3, 4));
}
static nb_tensor *call_ones(nb_tensor *in)
{
    (void)in;
    return nb_ones(NB_SHAPE(5));
}
static nb_tensor *call_full(nb_tensor *in)
{
    (void)in;
    return nb_full(NB_SHAPE0, 2.0f);
}
static nb_tensor *call_scalar(nb_tensor *in)
{
    (void)in;
    return nb_scalar(1.0f);
}
static nb_tensor *call_from_data(nb_tensor *in)
{
    (void)in;
    return nb_from_data((const float[]){1, 2, 3, 4}, NB_SHAPE(2, 2));
}
static nb_tensor *call_arange(nb_tensor *in)
{
    (void)in;
    return nb_arange(0, 1, 0.1);
}
static nb_tensor *call_linspace(nb_tensor *in)
{
    (void)in;
    return nb_linspace(-1, 1, 7);
}
static nb_tensor *call_empty_like(nb_tensor *in)
{
    return nb_empty_like(in);
}
static nb_tensor *call_zeros_like(nb_tensor *in)
{
    return nb_zeros_like(in);
}
static nb_tensor *call_ones_like(nb_tensor *in)
{
    return nb_ones_like(in);
}
static nb_tensor *call_full_like(nb_tensor *in)
{
    return nb_full_like(in, 3.0f);
}
static nb_tensor *call_clone(nb_tensor *in)
{
    return nb_clone(in);
}
static nb_tensor *call_reshape(nb_tensor *in)
{
    return nb_reshape(in, NB_SHAPE(-1));
}
static nb_tensor *call_view(nb_tensor *in)
{
    return nb_view(in, NB_SHAPE(3, 2));
}
static nb_tensor *call_squeeze(nb_tensor *in)
{
    return nb_squeeze(in, NB_DIMS_ALL);
}
static nb_tensor *call_unsqueeze(nb_tensor *in)
{
    return nb_unsqueeze(in, -1);
}
static nb_tensor *call_flatten(nb_tensor *in)
{
    return nb_flatten(in, 0, -1);
}
static nb_tensor *call_slice(nb_tensor *in)
{
    return nb_slice(in, 0, 1, 2, 1);
}
static nb_tensor *call_transpose(nb_tensor *in)
{
    return nb_transpose(in, 0, 1);
}
static nb_tensor *call_transpose_same(nb_tensor *in)
{
    return nb_transpose(in, -1, -1); /* nothing moves: still a copy */
}
static nb_tensor *call_permute(nb_tensor *in)
{
    return nb_permute(in, NB_DIMS(1, 0));
}
static nb_tensor *call_t(nb_tensor *in)
{
    return nb_t(in);
}

static void sweep(const sweep_case *c, nb_tensor *in)
{
    long k;
    for (k = 1;; k++) {
        nb_error_clear();
        long live = nbt_alloc_live();
        nbt_fail_alloc_after(k);
        nb_tensor *r = c->call(in);
        int failed = nbt_alloc_failed();
        nbt_fail_alloc_after(0);
        if (!failed) {
            if (!r)
                fail_msg("%s: failed without a failing allocation: %s", c->fn,
                         nb_last_error()->message);
            nb_release(r);
            if (nbt_alloc_live() != live)
                fail_msg("%s: %ld blocks leaked", c->fn, nbt_alloc_live() - live);
            break;
        }
        if (r) fail_msg("%s: succeeded although allocation %ld failed", c->fn, k);
        char want[128];
        snprintf(want, sizeof want, "%s: out of memory", c->fn);
        const nb_error *e = nb_last_error();
        if (e->code != NB_ENOMEM || strcmp(e->message, want) != 0)
            fail_msg("%s: allocation %ld failed: %s \"%s\", want NB_ENOMEM \"%s\"", c->fn, k,
                     nb_status_name(e->code), e->message, want);
        if (nbt_alloc_live() != live)
            fail_msg("%s: allocation %ld failed: %ld blocks leaked", c->fn, k,
                     nbt_alloc_live() - live);
    }
    if (k < 2) fail_msg("%s: allocated nothing", c->fn);
}

/*
 * A key destructor that reads the last error after nabla's own destructor freed the thread's
 * message buffer (glibc runs them in the order the keys were made): it reads the message,
 * moved and cut to 63 bytes, not freed memory (ASan's report without the move).
 */
typedef struct exit_read {
    nb_status code;
    char message[600];
} exit_read;

static pthread_key_t reader_key;

static void read_at_exit(void *out)
{
    exit_read *r = out;
    r->code = nb_last_error()->code;
    snprintf(r->message, sizeof r->message, "%s", nb_last_error()->message);
}

static void *long_error_then_exit(void *out)
{
    char path[200] = "/nonexistent/";
    memset(path + strlen(path), 'x', 150);
    path[163] = '\0';
    assert_null(nb_safetensors_load(path));
    pthread_setspecific(reader_key, out);
    return NULL;
}

static void test_message_read_at_thread_exit(void **state)
{
    (void)state;
    assert_null(nb_zeros(NB_SHAPE(-2))); /* nabla's key exists before the reader's */
    nb_error_clear();
    assert_int_equal(pthread_key_create(&reader_key, read_at_exit), 0);
    exit_read r = {NB_OK, ""};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, long_error_then_exit, &r), 0);
    assert_int_equal(pthread_join(th, NULL), 0);
    pthread_key_delete(reader_key);
    assert_int_equal(r.code, NB_EIO);
    assert_int_equal(strlen(r.message), 63);
    assert_memory_equal(r.message, "nb_safetensors_load: cannot open '/nonexistent/xxxx", 51);
}

static void test_alloc_failures(void **state)
{
    (void)state;
    nbt_fail_alloc_after(0);
    long live0 = nbt_alloc_live();
    nb_tensor *m = nb_arange(0, 6, 1), *m2 = nb_reshape(m, NB_SHAPE(2, 3));
    nb_tensor *v = nb_arange(0, 3, 1), *s0 = nb_scalar(4);
    assert_non_null(m2);
    const sweep_case cases[] = {
        {"nb_empty", call_empty},
        {"nb_zeros", call_zeros},
        {"nb_ones", call_ones},
        {"nb_full", call_full},
        {"nb_scalar", call_scalar},
        {"nb_from_data", call_from_data},
        {"nb_arange", call_arange},
        {"nb_linspace", call_linspace},
        {"nb_empty_like", call_empty_like},
        {"nb_zeros_like", call_zeros_like},
        {"nb_ones_like", call_ones_like},
        {"nb_full_like", call_full_like},
        {"nb_clone", call_clone},
        {"nb_reshape", call_reshape},
        {"nb_view", call_view},
        {"nb_squeeze", call_squeeze},
        {"nb_unsqueeze", call_unsqueeze},
        {"nb_flatten", call_flatten},
        {"nb_slice", call_slice},
        {"nb_transpose", call_transpose},
        {"nb_transpose", call_transpose_same},
        {"nb_permute", call_permute},
        {"nb_t", call_t},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) sweep(&cases[i], m2);
    /* 1-D and 0-d inputs take other paths through some of them */
    const sweep_case small[] = {
        {"nb_transpose", call_transpose_same},
        {"nb_t", call_t},
        {"nb_clone", call_clone},
        {"nb_unsqueeze", call_unsqueeze},
        {"nb_flatten", call_flatten},
        {"nb_squeeze", call_squeeze},
    };
    for (size_t i = 0; i < sizeof small / sizeof small[0]; i++) {
        sweep(&small[i], s0);
        sweep(&small[i], v);
    }

    /* the same inside a scope whose list of tensors must grow at the failing call */
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        for (long k = 1;; k++) {
            nb_error_clear();
            long live = nbt_alloc_live();
            nb_scope *s = nb_scope_begin();
            assert_non_null(s);
            for (int j = 0; j < 8; j++) assert_non_null(nb_scalar((float)j));
            nbt_fail_alloc_after(k);
            nb_tensor *r = cases[i].call(m2);
            int failed = nbt_alloc_failed();
            nbt_fail_alloc_after(0);
            if (failed) {
                assert_null(r);
                char want[128];
                snprintf(want, sizeof want, "%s: out of memory", cases[i].fn);
                assert_error_is(NB_ENOMEM, want);
            } else {
                assert_non_null(r);
            }
            assert_int_equal(nb_scope_end(s), NB_OK);
            assert_int_equal(nbt_alloc_live(), live);
            if (!failed) break;
        }
    }

    /* nb_scope_begin */
    nb_error_clear();
    nbt_fail_alloc_after(1);
    assert_null(nb_scope_begin());
    nbt_fail_alloc_after(0);
    assert_error_is(NB_ENOMEM, "nb_scope_begin: out of memory");
    nb_scope *s = nb_scope_begin();
    assert_non_null(s);
    assert_int_equal(nb_scope_end(s), NB_OK);

    /* nb_scope_keep into a parent scope whose list must grow */
    nb_error_clear();
    long live = nbt_alloc_live();
    nb_scope *outer = nb_scope_begin();
    for (int i = 0; i < 16; i++) nb_scalar(0.0f); /* fill the outer scope's inline list */
    nb_scope *inner = nb_scope_begin();
    nb_tensor *t = nb_ones(NB_SHAPE(2));
    nbt_fail_alloc_after(1);
    assert_null(nb_scope_keep(t));
    assert_true(nbt_alloc_failed());
    nbt_fail_alloc_after(0);
    assert_error_is(NB_ENOMEM, "nb_scope_keep: out of memory");
    assert_ptr_equal(nb_scope_keep(t), t); /* still in inner: now it moves */
    assert_int_equal(nb_scope_end(inner), NB_OK);
    assert_int_equal(nb_tensor_numel(t), 2);
    assert_int_equal(nb_scope_end(outer), NB_OK);
    assert_int_equal(nbt_alloc_live(), live);

    nb_release(s0);
    nb_release(v);
    nb_release(m2);
    nb_release(m);
    assert_int_equal(nbt_alloc_live(), live0);
    nbt_fail_alloc_after(0);
}

/* ---- the allocator --------------------------------------------------------------------- */

typedef struct counting {
    long allocs, frees;
    size_t max_align;
    int bad_align;
} counting;

static void *my_alloc(size_t size, size_t align, void *ctx)
{
    counting *c = ctx;
    c->allocs++;
    if (align > c->max_align) c->max_align = align;
    if (align == 0 || (align & (align - 1)) != 0 || align > 64) c->bad_align++;
    if (align < sizeof(void *)) align = sizeof(void *);
    size_t rounded = (size + align - 1) / align * align;
    return aligned_alloc(align, rounded ? rounded : align);
}

static void my_free(void *p, void *ctx)
{
    counting *c = ctx;
    assert_non_null(p);
    c->frees++;
    free(p);
}

static void test_set_allocator(void **state)
{
    (void)state;
    counting c = {0, 0, 0, 0};
    const nb_allocator a = {my_alloc, my_free, &c};
    nb_set_allocator(&a);
    nb_scope *s = nb_scope_begin();
    nb_tensor *t = nb_transpose(nb_ones(NB_SHAPE(3, 5)), 0, 1);
    assert_non_null(t);
    assert_int_equal((uintptr_t)nb_tensor_data(t) % 64, 0);
    assert_int_equal(nb_scope_end(s), NB_OK);
    assert_true(c.allocs > 0);
    assert_int_equal(c.frees, c.allocs);
    assert_int_equal(c.max_align, 64); /* data buffers ask for 64 bytes */
    assert_int_equal(c.bad_align, 0);

    /* NULL restores the default allocator */
    nb_set_allocator(NULL);
    long before = c.allocs;
    t = nb_zeros(NB_SHAPE(100));
    assert_non_null(t);
    assert_int_equal((uintptr_t)nb_tensor_data(t) % 64, 0);
    nb_release(t);
    assert_int_equal(c.allocs, before);
    assert_int_equal(c.frees, before);

    /* and so does the test utility's allocator, once replaced */
    nbt_fail_alloc_after(1);
    nb_set_allocator(NULL);
    t = nb_ones(NB_SHAPE(2));
    assert_non_null(t);
    assert_int_equal(nbt_alloc_count(), 0);
    assert_false(nbt_alloc_failed());
    nb_release(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_initial_state, nbt_setup_counting,
                                        nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_status_names, nbt_setup_counting,
                                        nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_messages, nbt_setup_counting, nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_long_message_utf8, nbt_setup_counting,
                                        nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_warning_handler, nbt_setup_counting,
                                        nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_thread_local, nbt_setup_counting,
                                        nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_message_read_at_thread_exit, nbt_setup_counting,
                                        nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_alloc_failures, nbt_setup_counting,
                                        nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_set_allocator, nbt_setup, nbt_teardown),
    };
    return cmocka_run_group_tests_name("error", tests, NULL, NULL);
}
