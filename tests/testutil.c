#define _DEFAULT_SOURCE /* mkdtemp, scandir, alphasort */
#include "testutil.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

void nbt_assert_error(nb_status code, const char *text, const char *file, int line)
{
    const nb_error *e = nb_last_error();
    if (e->code != code) {
        fail_msg("%s:%d: expected error %s, got %s (%s)", file, line, nb_status_name(code),
                 nb_status_name(e->code), e->message);
    }
    if (!strstr(e->message, text)) {
        fail_msg("%s:%d: error message \"%s\" does not contain \"%s\"", file, line, e->message,
                 text);
    }
    if (strchr(e->message, '\n')) fail_msg("%s:%d: error message has a newline", file, line);
}

void nbt_assert_close(const float *got, const float *want, int64_t n, double atol, double rtol,
                      const char *file, int line)
{
    for (int64_t i = 0; i < n; i++) {
        double g = (double)got[i], w = (double)want[i];
        if (isnan(w) && isnan(g)) continue;
        if (!(fabs(g - w) <= atol + rtol * fabs(w)))
            fail_msg("%s:%d: element %lld: got %.9g, want %.9g", file, line, (long long)i, g, w);
    }
}

const char *nbt_repr(const nb_tensor *t)
{
    static char buf[1 << 16];
    int64_t n = nb_tensor_format(t, buf, sizeof buf);
    if (n < 0) snprintf(buf, sizeof buf, "<error: %s>", nb_last_error()->message);
    return buf;
}

static int warnings;
static char last_warning[1024];

static void on_warning(const char *msg, void *ctx)
{
    (void)ctx;
    warnings++;
    snprintf(last_warning, sizeof last_warning, "%s", msg);
}

void nbt_capture_warnings(void)
{
    warnings = 0;
    last_warning[0] = '\0';
    nb_set_warning_handler(on_warning, NULL);
}

int nbt_warning_count(void)
{
    return warnings;
}

const char *nbt_last_warning(void)
{
    return last_warning;
}

/* Atomic: tests with threads allocate from several at once. */
static long fail_at;
static _Atomic long alloc_count, alloc_live;
static _Atomic int failed;
static int fail_rest;

static void *counting_alloc(size_t size, size_t align, void *ctx)
{
    (void)ctx;
    long n = ++alloc_count;
    if (fail_at > 0 && (n == fail_at || (fail_rest && n > fail_at))) {
        failed = 1;
        return NULL;
    }
    size_t rounded = (size + align - 1) / align * align;
    void *p = aligned_alloc(align, rounded ? rounded : align);
    if (p) alloc_live++;
    return p;
}

static void counting_free(void *p, void *ctx)
{
    (void)ctx;
    alloc_live--;
    free(p);
}

void nbt_fail_alloc_after(long k)
{
    static const nb_allocator a = {counting_alloc, counting_free, NULL};
    fail_at = k;
    fail_rest = 0;
    alloc_count = 0;
    failed = 0;
    nb_set_allocator(&a);
}

void nbt_fail_alloc_from(long k)
{
    nbt_fail_alloc_after(k);
    fail_rest = 1;
}

int nbt_alloc_failed(void)
{
    return failed;
}

long nbt_alloc_count(void)
{
    return alloc_count;
}

long nbt_alloc_live(void)
{
    return alloc_live;
}

int nbt_setup(void **state)
{
    (void)state;
    nb_error_clear();
    nb_manual_seed(0);
    nb_set_grad_enabled(true);
    return 0;
}

int nbt_teardown(void **state)
{
    (void)state;
    nb_set_warning_handler(NULL, NULL);
    return 0;
}

long nbt_live0;

int nbt_setup_counting(void **state)
{
    nbt_setup(state);
    nbt_fail_alloc_after(0);
    nbt_live0 = nbt_alloc_live();
    return 0;
}

int nbt_teardown_counting(void **state)
{
    nbt_teardown(state);
    long leaked = nbt_alloc_live() - nbt_live0;
    nb_set_allocator(NULL);
    if (leaked != 0) {
        fprintf(stderr, "teardown: %ld blocks leaked\n", leaked);
        return -1;
    }
    return 0;
}

unsigned char *nbt_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    *len = 0;
    if (!f) return NULL;
    unsigned char *buf = NULL;
    size_t n = 0, cap = 0, got;
    do {
        if (n == cap) buf = realloc(buf, cap = cap * 2 + 4096);
        got = fread(buf + n, 1, cap - n, f);
        n += got;
    } while (got > 0);
    fclose(f);
    *len = n;
    return buf;
}

char *nbt_make_dir(void)
{
    static char path[256];
    snprintf(path, sizeof path, "%s/nb_t_XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(path)) fail_msg("cannot make a directory %s", path);
    return path;
}

/* The entries of dir but "." and "..", sorted (free() the list and each one); their count. */
static int entries(const char *dir, struct dirent ***list)
{
    struct dirent **e;
    int n = scandir(dir, &e, NULL, alphasort), kept = 0;
    if (n < 0) fail_msg("cannot read the directory %s", dir);
    for (int i = 0; i < n; i++) {
        if (!strcmp(e[i]->d_name, ".") || !strcmp(e[i]->d_name, ".."))
            free(e[i]);
        else
            e[kept++] = e[i];
    }
    *list = e;
    return kept;
}

int nbt_dir_entries(const char *dir, char names[][256], int max)
{
    struct dirent **e;
    int n = entries(dir, &e);
    for (int i = 0; i < n; i++) {
        if (i < max) snprintf(names[i], 256, "%s", e[i]->d_name);
        free(e[i]);
    }
    free(e);
    return n;
}

void nbt_rm_dir(const char *dir)
{
    char path[600];
    struct dirent **e;
    int n = entries(dir, &e);
    for (int i = 0; i < n; i++) {
        if (snprintf(path, sizeof path, "%s/%s", dir, e[i]->d_name) < (int)sizeof path)
            unlink(path);
        free(e[i]);
    }
    free(e);
    rmdir(dir);
}

void nbt_write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f) fail_msg("cannot create %s", path);
    if (fwrite(data, 1, len, f) != len || fclose(f) != 0) fail_msg("cannot write %s", path);
}

/* Make room for need bytes in m (fails the test when it cannot). */
static void membuf_reserve(nbt_membuf *m, size_t need)
{
    if (need <= m->cap) return;
    m->cap = need * 2;
    m->data = realloc(m->data, m->cap);
    assert_non_null(m->data);
}

int nbt_mem_write(void *ctx, const void *data, size_t size)
{
    nbt_membuf *m = ctx;
    size_t take = size > m->fail_at - m->len ? m->fail_at - m->len : size;
    membuf_reserve(m, m->len + take);
    if (take) memcpy(m->data + m->len, data, take);
    m->len += take;
    return take < size ? ENOSPC : 0; /* a short write before the failure */
}

char *nbt_read_text(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) fail_msg("cannot open %s", path);
    static char buf[1 << 17];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *copy = malloc(n + 1);
    memcpy(copy, buf, n + 1);
    return copy;
}

/* The lines after start that begin with prefix, prefix removed: from the first such line to
 * the next that does not (or, with end, to the line containing end). */
void nbt_extract(const char *text, const char *start, const char *prefix, const char *end,
                 char *out, size_t size)
{
    const char *p = strstr(text, start);
    if (!p) fail_msg("no \"%s\"", start);
    p = strchr(p, '\n') + 1;
    size_t len = 0, plen = strlen(prefix);
    bool started = false;
    while (*p) {
        const char *nl = strchr(p, '\n');
        size_t line = nl ? (size_t)(nl - p) : strlen(p);
        const char *stop = end ? strstr(p, end) : NULL;
        if (stop && stop < p + line) break;
        bool match = line >= plen && !strncmp(p, prefix, plen);
        if (!match && (started || end)) {
            if (!end) break;
            fail_msg("line without \"%s\": %.*s", prefix, (int)line, p);
        }
        if (match) {
            started = true;
            if (len + line + 1 >= size) fail_msg("example too long");
            memcpy(out + len, p + plen, line - plen);
            len += line - plen;
            out[len++] = '\n';
        }
        p += line + (nl ? 1 : 0);
    }
    out[len] = '\0';
}

nb_tensor *nbt_tensor_of(const float *v, int ndim, const int64_t *dims)
{
    nb_tensor *t = nb_from_data(v, nb_shape_make(ndim, dims));
    if (!t) fail_msg("nb_from_data: %s", nb_last_error()->message);
    return t;
}

void nbt_check_shape(const nb_tensor *t, nb_shape want, const char *what)
{
    if (!t) fail_msg("%s: NULL (%s)", what, nb_last_error()->message);
    char got_s[128], want_s[128];
    nb_shape_format(nb_tensor_size(t), got_s, sizeof got_s);
    nb_shape_format(want, want_s, sizeof want_s);
    if (strcmp(got_s, want_s) != 0) fail_msg("%s: shape %s, want %s", what, got_s, want_s);
}

void nbt_oom_sweep(const char *fn, nb_tensor *(*f)(nb_tensor *x), nb_tensor *x)
{
    nb_tensor *y0 = f(x), *g = nb_tensor_requires_grad(y0) ? nb_randn_like(y0) : NULL;
    nb_release(y0);
    char want[96];
    for (long k = 1;; k++) {
        long live = nbt_alloc_live();
        nbt_fail_alloc_after(k);
        nb_tensor *y = f(x);
        nb_status rc = !y ? NB_ENOMEM : g ? nb_backward(y, g, false) : NB_OK;
        int hit = nbt_alloc_failed();
        nbt_fail_alloc_after(0);
        if (!hit) {
            assert_int_equal(rc, NB_OK);
            assert_true(!g || nb_tensor_grad(x));
            nb_release(y);
            assert_true(k > (g ? 3 : 1));
            break;
        }
        assert_int_equal(rc, NB_ENOMEM);
        snprintf(want, sizeof want, "%s: out of memory", y ? "nb_backward" : fn);
        assert_error(NB_ENOMEM, want);
        nb_release(y);
        assert_int_equal(nb_zero_grad(x, true), NB_OK);
        assert_int_equal(nbt_alloc_live(), live);
    }
    assert_int_equal(nb_zero_grad(x, true), NB_OK);
    nb_release(g);
}

void nbt_alloc_sweep(const char *name, nbt_step_fn body, nb_tensor *const *p, int np)
{
    long k, failures = 0;
    for (k = 1;; k++) {
        nbt_fail_alloc_after(k);
        long live0 = nbt_alloc_live();
        nb_error_clear();
        nb_status rc = body(p);
        int hit = nbt_alloc_failed();
        nbt_fail_alloc_after(0);
        if (rc != NB_OK) {
            const nb_error *e = nb_last_error(); /* read: no longer pending */
            if (!hit) fail_msg("%s: k=%ld failed without an allocation failure", name, k);
            if (rc != NB_ENOMEM || e->code != NB_ENOMEM || strncmp(e->message, "nb_", 3) != 0 ||
                !strstr(e->message, ": out of memory") || strchr(e->message, '\n'))
                fail_msg("%s: k=%ld: %s", name, k, e->message);
            failures++;
        }
        for (int i = 0; i < np; i++) assert_int_equal(nb_tensor_set_grad(p[i], NULL), NB_OK);
        long leaked = nbt_alloc_live() - live0;
        if (leaked) fail_msg("%s: k=%ld: %ld blocks leaked", name, k, leaked);
        if (!hit) break;
    }
    nb_error_clear();
    assert_true(failures > 5);
}
