/*
 * Printing in PyTorch 1.13's repr format (torch/_tensor_str.py with the default print
 * options). Text goes through a sink that either fills a caller's buffer snprintf-style
 * (counting what does not fit) or streams to a FILE, so no length limit exists.
 */
#include <inttypes.h>
#include <math.h>
#include <string.h>

#include "core/internal.h"

/* PyTorch's default print options. */
#define PRECISION_FMT_F "%.4f"
#define PRECISION_FMT_E "%.4e"
#define THRESHOLD       1000
#define EDGEITEMS       3
#define LINEWIDTH       80
/* Longest formatted float32: "-340282346638528859811704183484516925440.0000" is 45 chars. */
#define VALUE_MAX 64
/* "(d0, d1, ...)" for NB_MAX_DIMS int64 sizes. */
#define DIMS_MAX (NB_MAX_DIMS * 22 + 4)

typedef struct sink {
    char *buf; /* NULL when measuring or writing to f */
    size_t size;
    FILE *f;
    bool failed;        /* a write to f failed */
    int64_t len;        /* everything written so far, fitting or not */
    int64_t line_start; /* offset just past the last '\n' */
} sink;

static void put_n(sink *s, const char *p, size_t n)
{
    for (size_t i = n; i > 0; i--) {
        if (p[i - 1] == '\n') {
            s->line_start = s->len + (int64_t)i;
            break;
        }
    }
    if (s->f) {
        if (!s->failed && n > 0 && fwrite(p, 1, n, s->f) != n) s->failed = true;
    } else if (s->buf && s->size > 0 && (size_t)s->len < s->size - 1) {
        size_t room = s->size - 1 - (size_t)s->len;
        memcpy(s->buf + s->len, p, n < room ? n : room);
    }
    s->len += (int64_t)n;
}

static void put(sink *s, const char *p)
{
    put_n(s, p, strlen(p));
}

static void put_spaces(sink *s, int64_t n)
{
    static const char spaces[] = "                                ";
    while (n > 0) {
        size_t k = n < (int64_t)(sizeof spaces - 1) ? (size_t)n : sizeof spaces - 1;
        put_n(s, spaces, k);
        n -= (int64_t)k;
    }
}

/* NUL-terminate a buffer sink, snprintf-style. */
static void sink_finish(const sink *s)
{
    if (s->buf && s->size > 0)
        s->buf[(size_t)s->len < s->size ? (size_t)s->len : s->size - 1] = '\0';
}

/* "<open>d0, d1<close>" into out (DIMS_MAX bytes). */
static void dims_str(char *out, char open, char close, int ndim, const int64_t *dims)
{
    size_t n = 0;
    out[n++] = open;
    for (int i = 0; i < ndim; i++) {
        int w = snprintf(out + n, DIMS_MAX - n, i ? ", %" PRId64 : "%" PRId64, dims[i]);
        n += (size_t)w;
    }
    out[n++] = close;
    out[n] = '\0';
}

/* ---- the formatter: _Formatter for a float tensor ------------------------------------ */

typedef enum fmt_mode { MODE_INT, MODE_FLOAT, MODE_SCI } fmt_mode;

typedef struct formatter {
    fmt_mode mode;
    int64_t width;
    /* statistics over the non-zero finite values shown */
    bool any;
    bool integral;
    double min_abs, max_abs;
} formatter;

/* Format v as Python's '{:.4f}' / '{:.4e}' / '{:.0f}.' of float(v); returns the length. */
static size_t format_value(fmt_mode mode, float v, char *out)
{
    const char *word = NULL;
    if (isnan(v))
        word = "nan"; /* Python drops the sign of a NaN, printf would not */
    else if (isinf(v))
        word = v > 0 ? "inf" : "-inf";
    if (word) {
        strcpy(out, word);
        return strlen(word);
    }
    double d = (double)v;
    int n;
    switch (mode) {
    case MODE_SCI:
        n = snprintf(out, VALUE_MAX, PRECISION_FMT_E, d);
        break;
    case MODE_INT:
        n = snprintf(out, VALUE_MAX, "%.0f.", d);
        break;
    default:
        n = snprintf(out, VALUE_MAX, PRECISION_FMT_F, d);
        break;
    }
    return (size_t)n;
}

typedef void (*visit_fn)(formatter *f, float v);

/* Visit the elements that will be shown: with summarize, EDGEITEMS at each end of a dim. */
static void walk(formatter *f, visit_fn fn, const float *data, const int64_t *dims, int ndim,
                 bool summarize)
{
    if (ndim == 0) {
        fn(f, data[0]);
        return;
    }
    int64_t stride = 1;
    for (int i = 1; i < ndim; i++) stride *= dims[i];
    int64_t n = dims[0];
    bool cut = summarize && n > 2 * EDGEITEMS;
    for (int64_t i = 0; i < n; i++) {
        if (cut && i == EDGEITEMS) i = n - EDGEITEMS;
        if (ndim == 1)
            fn(f, data[i]);
        else
            walk(f, fn, data + i * stride, dims + 1, ndim - 1, summarize);
    }
}

static void visit_stats(formatter *f, float v)
{
    if (!isfinite(v) || v == 0.0f) return;
    /* PyTorch takes min/max/ratio on a double copy of the float32 values. */
    double a = fabs((double)v);
    if (!f->any || a < f->min_abs) f->min_abs = a;
    if (!f->any || a > f->max_abs) f->max_abs = a;
    f->any = true;
    if (v != ceilf(v)) f->integral = false;
}

static void visit_width(formatter *f, float v)
{
    if (!isfinite(v) || v == 0.0f) return; /* zeros and non-finite values never widen */
    char tmp[VALUE_MAX];
    int64_t w = (int64_t)format_value(f->mode, v, tmp);
    if (w > f->width) f->width = w;
}

static void formatter_init(formatter *f, const float *data, const int64_t *dims, int ndim,
                           bool summarize)
{
    *f = (formatter){.mode = MODE_INT, .width = 1, .integral = true};
    walk(f, visit_stats, data, dims, ndim, summarize);
    if (!f->any) return; /* int mode, width 1: "0.", "nan" */
    bool wide = f->max_abs / f->min_abs > 1000.0 || f->max_abs > 1.0e8;
    if (f->integral)
        f->mode = wide ? MODE_SCI : MODE_INT;
    else
        f->mode = wide || f->min_abs < 1.0e-4 ? MODE_SCI : MODE_FLOAT;
    walk(f, visit_width, data, dims, ndim, summarize);
}

static void put_value(sink *s, const formatter *f, float v)
{
    char tmp[VALUE_MAX];
    size_t n = format_value(f->mode, v, tmp);
    put_spaces(s, f->width - (int64_t)n);
    put_n(s, tmp, n);
}

/* ---- layout: _tensor_str_with_formatter / _vector_str --------------------------------- */

static void put_vector(sink *s, const formatter *f, const float *data, int64_t n, int64_t indent,
                       bool summarize)
{
    int64_t per_line = (LINEWIDTH - indent) / (f->width + 2);
    if (per_line < 1) per_line = 1;
    bool cut = summarize && n > 2 * EDGEITEMS;
    /* The " ..." of a summary is one more item for the line breaking. */
    int64_t items = cut ? 2 * EDGEITEMS + 1 : n;
    put(s, "[");
    for (int64_t k = 0; k < items; k++) {
        if (k > 0 && k % per_line == 0) {
            put(s, ",\n");
            put_spaces(s, indent + 1);
        } else if (k > 0) {
            put(s, ", ");
        }
        if (!cut || k < EDGEITEMS)
            put_value(s, f, data[k]);
        else if (k == EDGEITEMS)
            put(s, " ...");
        else
            put_value(s, f, data[n - (items - k)]);
    }
    put(s, "]");
}

static void put_tensor(sink *s, const formatter *f, const float *data, const int64_t *dims,
                       int ndim, int64_t indent, bool summarize)
{
    if (ndim == 0) {
        put_value(s, f, data[0]);
        return;
    }
    if (ndim == 1) {
        put_vector(s, f, data, dims[0], indent, summarize);
        return;
    }
    int64_t stride = 1;
    for (int i = 1; i < ndim; i++) stride *= dims[i];
    int64_t n = dims[0];
    bool cut = summarize && n > 2 * EDGEITEMS;
    put(s, "[");
    for (int64_t i = 0; i < n; i++) {
        if (i > 0) {
            /* Python joins slices with "," + "\n" * (ndim - 1) + indentation. */
            put(s, ",");
            for (int k = 1; k < ndim; k++) put(s, "\n");
            put_spaces(s, indent + 1);
        }
        if (cut && i == EDGEITEMS) {
            put(s, "...");
            i = n - EDGEITEMS - 1;
            continue;
        }
        put_tensor(s, f, data + i * stride, dims + 1, ndim - 1, indent + 1, summarize);
    }
    put(s, "]");
}

/* _add_suffixes: ", suffix", or ",\n" + indent when the last line would pass LINEWIDTH. */
static void put_suffix(sink *s, int64_t *last_line_len, int64_t indent, const char *a,
                       const char *b, const char *c)
{
    int64_t n = (int64_t)(strlen(a) + strlen(b) + strlen(c));
    if (*last_line_len + n + 2 > LINEWIDTH) {
        put(s, ",\n");
        put_spaces(s, indent);
        *last_line_len = indent + n; /* sic: PyTorch drops the +2 here */
    } else {
        put(s, ", ");
        *last_line_len += n + 2;
    }
    put(s, a);
    put(s, b);
    put(s, c);
}

static void put_repr(sink *s, const nb_tensor *t)
{
    static const char prefix[] = "tensor(";
    const int64_t indent = (int64_t)sizeof prefix - 1;
    put(s, prefix);
    if (t->numel == 0) {
        put(s, "[]");
    } else {
        formatter f;
        bool summarize = t->numel > THRESHOLD;
        formatter_init(&f, nb__data(t), t->shape, t->ndim, summarize);
        put_tensor(s, &f, nb__data(t), t->shape, t->ndim, indent, summarize);
    }
    /* Python: len(str) - str.rfind("\n") + 1, i.e. the last line's length + 2. */
    int64_t last_line_len = s->len - s->line_start + 2;
    if (t->numel == 0 && t->ndim != 1) {
        char dims[DIMS_MAX];
        dims_str(dims, '(', ')', t->ndim, t->shape);
        put_suffix(s, &last_line_len, indent, "size=", dims, "");
    }
    const char *grad_fn = NULL;
    bool requires_grad = false;
    if (t->meta) t->meta->ops->describe(t, &grad_fn, &requires_grad);
    if (grad_fn)
        put_suffix(s, &last_line_len, indent, "grad_fn=<", grad_fn, ">");
    else if (requires_grad)
        put_suffix(s, &last_line_len, indent, "requires_grad=True", "", "");
    put(s, ")");
}

static nb_status check_buf(const char *fn, const char *buf, size_t size)
{
    if (!buf && size > 0) return nb__error(NB_EINVAL, fn, "buf is NULL but size is %zu", size);
    return NB_OK;
}

int64_t nb_tensor_format(const nb_tensor *t, char *buf, size_t size)
{
    if (!t) return nb__null("nb_tensor_format", "t");
    nb_status st = check_buf("nb_tensor_format", buf, size);
    if (st != NB_OK) return st;
    sink s = {.buf = buf, .size = size};
    put_repr(&s, t);
    sink_finish(&s);
    return s.len;
}

static nb_status print_to(const char *fn, const nb_tensor *t, FILE *f)
{
    if (!t) return nb__null(fn, "t");
    if (!f) return nb__error(NB_EINVAL, fn, "argument 'f' is NULL");
    sink s = {.f = f};
    put_repr(&s, t);
    put(&s, "\n");
    if (s.failed) return nb__error(NB_EIO, fn, "write failed");
    return NB_OK;
}

nb_status nb_tensor_print(const nb_tensor *t, FILE *f)
{
    return print_to("nb_tensor_print", t, f);
}

nb_status nb_print(const nb_tensor *t)
{
    return print_to("nb_print", t, stdout);
}

static nb_status put_shape(const char *fn, sink *s, nb_shape shape)
{
    if (shape.ndim < 0 || shape.ndim > NB_MAX_DIMS)
        return nb__error(NB_EINVAL, fn, "ndim %d is outside [0, %d]", shape.ndim, NB_MAX_DIMS);
    char dims[DIMS_MAX];
    dims_str(dims, '[', ']', shape.ndim, shape.dims);
    put(s, "Size(");
    put(s, dims);
    put(s, ")");
    return NB_OK;
}

int64_t nb_shape_format(nb_shape shape, char *buf, size_t size)
{
    nb_status st = check_buf("nb_shape_format", buf, size);
    if (st != NB_OK) return st;
    sink s = {.buf = buf, .size = size};
    st = put_shape("nb_shape_format", &s, shape);
    sink_finish(&s);
    return st != NB_OK ? st : s.len;
}

nb_status nb_shape_print(nb_shape shape, FILE *f)
{
    if (!f) return nb__error(NB_EINVAL, "nb_shape_print", "argument 'f' is NULL");
    sink s = {.f = f};
    nb_status st = put_shape("nb_shape_print", &s, shape);
    if (st != NB_OK) return st;
    put(&s, "\n");
    if (s.failed) return nb__error(NB_EIO, "nb_shape_print", "write failed");
    return NB_OK;
}
