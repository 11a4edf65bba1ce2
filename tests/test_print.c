/*
 * Printing: every case of data/print_ref.h (made by data/gen_print.py from PyTorch 1.13's
 * repr) must print byte for byte the same; plus snprintf semantics, FILE output and errors.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "nabla/autograd.h"
#include "nabla/tensor.h"

#include "data/print_ref.h"

#define N_CASES (sizeof print_ref_cases / sizeof print_ref_cases[0])

/* The reference repr, joined from its chunks. Caller frees. */
static char *ref_repr(const print_ref_case *c)
{
    size_t n = 0;
    for (const char *const *p = c->repr; *p; p++) n += strlen(*p);
    char *s = malloc(n + 1);
    assert_non_null(s);
    s[0] = '\0';
    for (const char *const *p = c->repr; *p; p++) strcat(s, *p);
    return s;
}

static nb_tensor *ref_tensor(const print_ref_case *c)
{
    float *vals = NULL;
    if (c->numel > 0) {
        vals = malloc((size_t)c->numel * sizeof *vals);
        assert_non_null(vals);
        memcpy(vals, c->bits, (size_t)c->numel * sizeof *vals); /* exact float32 bits */
    }
    nb_tensor *t = nb_from_data(vals, nb_shape_make(c->ndim, c->dims));
    free(vals);
    assert_non_null(t);
    if (c->requires_grad) assert_ptr_equal(nb_requires_grad_(t, true), t);
    return t;
}

/* nb_tensor_format into a buffer sized by a measuring call. Caller frees. */
static char *format_all(const nb_tensor *t)
{
    int64_t n = nb_tensor_format(t, NULL, 0);
    assert_true(n > 0);
    char *s = malloc((size_t)n + 1);
    assert_non_null(s);
    assert_int_equal(nb_tensor_format(t, s, (size_t)n + 1), n);
    assert_int_equal(strlen(s), n);
    return s;
}

static void test_reference(void **state)
{
    (void)state;
    int bad = 0;
    for (size_t i = 0; i < N_CASES; i++) {
        const print_ref_case *c = &print_ref_cases[i];
        nb_tensor *t = ref_tensor(c);
        char *want = ref_repr(c);
        char *got = format_all(t);
        if (strcmp(want, got) != 0) {
            print_message("case %s:\nwant:\n%s\ngot:\n%s\n", c->name, want, got);
            bad++;
        }
        free(got);
        free(want);
        nb_release(t);
    }
    print_message("%d of %d reference cases match\n", (int)N_CASES - bad, (int)N_CASES);
    assert_int_equal(bad, 0);
}

static void test_snprintf(void **state)
{
    (void)state;
    const float v[] = {1.0f, 2.0f, 3.0f};
    nb_tensor *t = nb_from_data(v, NB_SHAPE(3));
    assert_non_null(t);
    const char *want = "tensor([1., 2., 3.])";
    const int64_t len = (int64_t)strlen(want);
    char buf[64];

    assert_int_equal(nb_tensor_format(t, NULL, 0), len);
    memset(buf, 'x', sizeof buf);
    assert_int_equal(nb_tensor_format(t, buf, 0), len);
    assert_int_equal(buf[0], 'x'); /* size 0 writes nothing */

    memset(buf, 'x', sizeof buf);
    assert_int_equal(nb_tensor_format(t, buf, 1), len);
    assert_string_equal(buf, "");
    assert_int_equal(buf[1], 'x');

    memset(buf, 'x', sizeof buf);
    assert_int_equal(nb_tensor_format(t, buf, 8), len);
    assert_string_equal(buf, "tensor(");
    assert_int_equal(buf[8], 'x');

    /* exactly one byte short: the last character gives way to the NUL */
    memset(buf, 'x', sizeof buf);
    assert_int_equal(nb_tensor_format(t, buf, (size_t)len), len);
    assert_int_equal(strlen(buf), len - 1);
    assert_memory_equal(buf, want, (size_t)len - 1);

    memset(buf, 'x', sizeof buf);
    assert_int_equal(nb_tensor_format(t, buf, (size_t)len + 1), len);
    assert_string_equal(buf, want);
    assert_int_equal(buf[len + 1], 'x');

    nb_release(t);
}

/* Truncation in the middle of a long, summarised repr with suffixes. */
static void test_truncate_long(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_CASES; i++) {
        const print_ref_case *c = &print_ref_cases[i];
        if (strcmp(c->name, "sum11x10x10") != 0 && strcmp(c->name, "rg_int_long") != 0) continue;
        nb_tensor *t = ref_tensor(c);
        char *want = ref_repr(c);
        size_t len = strlen(want);
        char *buf = malloc(len + 1);
        assert_non_null(buf);
        for (size_t size = 1; size <= len + 1; size += 37) {
            assert_int_equal(nb_tensor_format(t, buf, size), len);
            assert_int_equal(strlen(buf), size - 1);
            assert_memory_equal(buf, want, size - 1);
        }
        free(buf);
        free(want);
        nb_release(t);
    }
}

/* Read back everything written to f. Caller frees. */
static char *slurp(FILE *f)
{
    long n = ftell(f);
    assert_true(n >= 0);
    rewind(f);
    char *s = malloc((size_t)n + 1);
    assert_non_null(s);
    assert_int_equal(fread(s, 1, (size_t)n, f), (size_t)n);
    s[n] = '\0';
    return s;
}

static void test_print_file(void **state)
{
    (void)state;
    FILE *f = tmpfile();
    assert_non_null(f);
    const print_ref_case *c = &print_ref_cases[0];
    for (size_t i = 0; i < N_CASES; i++)
        if (strcmp(print_ref_cases[i].name, "sum40x30") == 0) c = &print_ref_cases[i];
    nb_tensor *t = ref_tensor(c);
    assert_int_equal(nb_tensor_print(t, f), NB_OK);
    assert_int_equal(nb_shape_print(NB_SHAPE(5, 3), f), NB_OK);
    char *got = slurp(f);
    char *want = ref_repr(c);
    size_t n = strlen(want);
    assert_memory_equal(got, want, n);
    assert_string_equal(got + n, "\nSize([5, 3])\n");
    free(want);
    free(got);
    fclose(f);
    nb_release(t);
}

static void test_shape_format(void **state)
{
    (void)state;
    char buf[64];
    assert_int_equal(nb_shape_format(NB_SHAPE(5, 3), buf, sizeof buf), 12);
    assert_string_equal(buf, "Size([5, 3])");
    assert_int_equal(nb_shape_format(NB_SHAPE0, buf, sizeof buf), 8);
    assert_string_equal(buf, "Size([])");
    assert_int_equal(nb_shape_format(NB_SHAPE(0), buf, sizeof buf), 9);
    assert_string_equal(buf, "Size([0])");
    assert_int_equal(nb_shape_format(NB_SHAPE(1, 2, 3, 4, 5, 6, 7, 8), NULL, 0), 30);
    assert_int_equal(nb_shape_format(NB_SHAPE(5, 3), buf, 7), 12);
    assert_string_equal(buf, "Size([");
    const int64_t big[] = {INT64_MAX};
    assert_int_equal(nb_shape_format(nb_shape_make(1, big), buf, sizeof buf), 27);
    assert_string_equal(buf, "Size([9223372036854775807])");
}

/* A non-leaf prints its node's name, after the size suffix, instead of requires_grad. */
static void test_grad_fn(void **state)
{
    (void)state;
    nb_tensor *x = nb_requires_grad_(nb_from_data((const float[]){1.5f, -2.0f}, NB_SHAPE(2)), true);
    assert_non_null(x);
    nb_tensor *y = nb_reshape(x, NB_SHAPE(2, 1));
    assert_non_null(y);
    /* as repr(x.reshape(2, 1)) in PyTorch 1.13 */
    char got[256];
    assert_true(nb_tensor_format(y, got, sizeof got) > 0);
    assert_string_equal(got,
                        "tensor([[ 1.5000],\n        [-2.0000]], grad_fn=<ReshapeAliasBackward0>)");
    nb_release(y);
    nb_release(x);
}

static void test_errors(void **state)
{
    (void)state;
    char buf[32];
    nb_error_clear();
    assert_int_equal(nb_tensor_format(NULL, buf, sizeof buf), NB_EINVAL);
    assert_string_equal(nb_last_error()->message, "nb_tensor_format: argument 't' is NULL");

    /* a NULL made by a failed call keeps that call's error */
    nb_tensor *bad = nb_reshape(NULL, NB_SHAPE(2));
    assert_null(bad);
    assert_int_equal(nb_tensor_format(bad, buf, sizeof buf), NB_EINVAL);
    assert_string_equal(nb_last_error()->message, "nb_reshape: argument 't' is NULL");
    /* once read, that error no longer explains a NULL: the NULL is reported itself */
    assert_int_equal(nb_tensor_format(bad, buf, sizeof buf), NB_EINVAL);
    assert_string_equal(nb_last_error()->message, "nb_tensor_format: argument 't' is NULL");

    nb_error_clear();
    assert_int_equal(nb_tensor_print(NULL, stdout), NB_EINVAL);
    assert_string_equal(nb_last_error()->message, "nb_tensor_print: argument 't' is NULL");
    nb_error_clear();
    assert_int_equal(nb_print(NULL), NB_EINVAL);
    assert_string_equal(nb_last_error()->message, "nb_print: argument 't' is NULL");

    nb_tensor *t = nb_scalar(1.0f);
    assert_non_null(t);
    nb_error_clear();
    assert_int_equal(nb_tensor_print(t, NULL), NB_EINVAL);
    assert_string_equal(nb_last_error()->message, "nb_tensor_print: argument 'f' is NULL");
    nb_error_clear();
    assert_int_equal(nb_tensor_format(t, NULL, 5), NB_EINVAL);
    assert_string_equal(nb_last_error()->message, "nb_tensor_format: buf is NULL but size is 5");

    /* a stream opened for reading refuses writes */
    FILE *ro = fopen("/dev/null", "r");
    if (ro) {
        nb_error_clear();
        assert_int_equal(nb_tensor_print(t, ro), NB_EIO);
        assert_string_equal(nb_last_error()->message, "nb_tensor_print: write failed");
        nb_error_clear();
        assert_int_equal(nb_shape_print(NB_SHAPE(2), ro), NB_EIO);
        assert_string_equal(nb_last_error()->message, "nb_shape_print: write failed");
        fclose(ro);
    }
    nb_release(t);

    nb_error_clear();
    assert_int_equal(nb_shape_print(NB_SHAPE(2), NULL), NB_EINVAL);
    assert_string_equal(nb_last_error()->message, "nb_shape_print: argument 'f' is NULL");
    nb_shape bad_shape = NB_SHAPE0;
    bad_shape.ndim = NB_MAX_DIMS + 1;
    nb_error_clear();
    memset(buf, 'x', sizeof buf);
    assert_int_equal(nb_shape_format(bad_shape, buf, sizeof buf), NB_EINVAL);
    assert_string_equal(buf, "");
    assert_string_equal(nb_last_error()->message, "nb_shape_format: ndim 9 is outside [0, 8]");
    nb_error_clear();
    bad_shape.ndim = -1;
    assert_int_equal(nb_shape_print(bad_shape, stdout), NB_EINVAL);
    assert_string_equal(nb_last_error()->message, "nb_shape_print: ndim -1 is outside [0, 8]");
    nb_error_clear();
    assert_int_equal(nb_shape_format(NB_SHAPE(2), NULL, 3), NB_EINVAL);
    assert_string_equal(nb_last_error()->message, "nb_shape_format: buf is NULL but size is 3");
    nb_error_clear();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reference),     cmocka_unit_test(test_snprintf),
        cmocka_unit_test(test_truncate_long), cmocka_unit_test(test_print_file),
        cmocka_unit_test(test_shape_format),  cmocka_unit_test(test_grad_fn),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests_name("print", tests, NULL, NULL);
}
