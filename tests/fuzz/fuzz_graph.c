/*
 * Fuzz target: a small program read from the input bytes, run on nabla's ops and engine.
 *
 * The program keeps up to NSLOT tensors (slot 0 starts as a 0-d leaf that requires grad).
 * Each instruction is a byte choosing a row of the table below (modulo its length), then
 * the bytes that row reads: operand slots, shapes, dims, values (nan, ±inf, -0, huge and
 * denormal included), flags. Rows cover creation, the elementwise ops (broadcasting),
 * comparisons, reductions with dims and keepdim, softmax, indexing, matmul and linear,
 * shape ops and views, losses, layer norm, dropout, in-place ops, grad mode (no-grad
 * stretches), nb_backward with and without retain_graph (and again), nb_grad, the .grad
 * accessors and printing. A result joins the slots (round robin once they are full).
 *
 * Whatever the program, nothing may crash, trip a sanitizer or leak, and:
 * - a call that fails leaves one line "nb_<the function called>: cause", with a known code
 *   (which a function returning a status also returns);
 * - a result has a valid shape and no grad_fn when made with grad mode off;
 * - after a backward, every .grad has its tensor's shape; nb_grad's results have their
 *   inputs' shapes;
 * - every block nabla allocated is freed once the slots are released (counted by the
 *   allocator installed here, which also refuses blocks over 16 MiB: those calls must fail
 *   with NB_ENOMEM, as they would when memory runs out).
 */
#define FUZZ_NAME "fuzz_graph"
#include "fuzz.h"

#include <float.h>
#include <limits.h>
#include <math.h>

#define NSLOT     12
#define MAX_NUMEL ((int64_t)1 << 16) /* larger results are dropped, to keep programs fast */
#define MAX_BLOCK ((size_t)16 << 20)

typedef struct fz {
    const uint8_t *p, *end;
    nb_tensor *slot[NSLOT];
    int n;    /* slots in use */
    int next; /* the slot a result replaces once all are in use */
    nb_generator *gen;
    const char *called; /* the public function the row called last */
} fz;

/* ---- the allocator: counts live blocks, refuses huge ones ------------------------------ */

static int64_t live_blocks;

static void *fz_alloc(size_t size, size_t align, void *ctx)
{
    (void)ctx;
    if (size > MAX_BLOCK) return NULL;
    void *p = aligned_alloc(align, size ? (size + align - 1) / align * align : align);
    if (p) live_blocks++;
    return p;
}

static void fz_free(void *ptr, void *ctx)
{
    (void)ctx;
    live_blocks--;
    free(ptr);
}

static void on_warning(const char *message, void *ctx)
{
    (void)ctx;
    CHECK(!strncmp(message, "nb_", 3) && !strchr(message, '\n'));
}

/* ---- reading the program --------------------------------------------------------------- */

static uint8_t rd(fz *f)
{
    return f->p < f->end ? *f->p++ : 0;
}

static bool flag(fz *f)
{
    return rd(f) & 1;
}

static nb_tensor *arg(fz *f)
{
    return f->slot[rd(f) % f->n];
}

/* An optional operand: absent (NULL) for an even byte. */
static nb_tensor *opt(fz *f)
{
    return flag(f) ? arg(f) : NULL;
}

static float value(fz *f)
{
    static const float special[16] = {0.0f,    -0.0f,  1.0f,     -1.0f,     0.5f,  2.0f,
                                      NAN,     -NAN,   INFINITY, -INFINITY, 1e30f, -1e30f,
                                      FLT_MAX, 1e-40f, 3.0f,     -2.5f};
    uint8_t b = rd(f);
    return b < 16 ? special[b] : (float)(b - 136) / 8.0f;
}

/* A size: 0..4 mostly, sometimes one of the edge values. */
static int64_t size_of(fz *f)
{
    static const int64_t special[16] = {-1,
                                        -2,
                                        -1,
                                        INT64_MAX,
                                        INT64_MIN,
                                        (int64_t)1 << 62,
                                        (int64_t)1 << 32,
                                        (int64_t)1 << 31,
                                        65536,
                                        5,
                                        6,
                                        7,
                                        8,
                                        16,
                                        -3,
                                        INT32_MAX};
    uint8_t b = rd(f);
    return b < 240 ? b % 5 : special[b - 240];
}

/* A position: -4..4 mostly, sometimes one of the edge values. */
static int64_t pos_of(fz *f)
{
    static const int64_t special[8] = {INT64_MIN, INT64_MAX, -5, 5, 6, (int64_t)1 << 40, -7, 9};
    uint8_t b = rd(f);
    return b < 248 ? b % 9 - 4 : special[b - 248];
}

/* A dim: -5..5 mostly (out of range for small tensors too), sometimes INT_MIN or INT_MAX. */
static int dim_of(fz *f)
{
    uint8_t b = rd(f);
    return b >= 254 ? (b == 254 ? INT_MIN : INT_MAX) : b % 11 - 5;
}

static nb_shape shape_of(fz *f)
{
    uint8_t b = rd(f);
    nb_shape s = {b >= 250 ? (b == 250 ? -1 : NB_MAX_DIMS + 1) : b % 5, {0}};
    for (int i = 0; i < s.ndim && i < NB_MAX_DIMS; i++) s.dims[i] = size_of(f);
    return s;
}

/* Every dim (NB_DIMS_ALL), 1 to 4 dims, the empty list, or a count out of range. */
static nb_dims dims_of(fz *f)
{
    uint8_t b = rd(f);
    int k = b >= 250 ? NB_MAX_DIMS + 1 : b % 6;
    if (k == 0) return NB_DIMS_ALL;
    nb_dims d = {k == 5 ? 0 : k, {0}};
    for (int i = 0; i < d.n && i < NB_MAX_DIMS; i++) d.d[i] = dim_of(f);
    return d;
}

static nb_reduction reduction_of(fz *f)
{
    uint8_t b = rd(f) % 5;
    return b == 4 ? (nb_reduction)7 : (nb_reduction)b;
}

static double param(fz *f)
{
    static const double special[8] = {0.0, 0.1, 0.5, 1.0, 1.5, -0.1, (double)NAN, 1e-5};
    return special[rd(f) % 8];
}

static int64_t index_param(fz *f)
{
    static const int64_t special[8] = {-100, 0, 1, 2, -1, INT64_MIN, INT64_MAX, NB_NO_PADDING};
    return special[rd(f) % 8];
}

/* ---- results ---------------------------------------------------------------------------- */

static void check_tensor(nb_tensor *t)
{
    const int ndim = nb_tensor_ndim(t);
    CHECK(ndim >= 0 && ndim <= NB_MAX_DIMS);
    int64_t numel = 1;
    for (int i = 0; i < ndim; i++) {
        CHECK(nb_tensor_shape(t)[i] >= 0);
        numel =
            numel && nb_tensor_shape(t)[i] > INT64_MAX / numel ? -1 : numel * nb_tensor_shape(t)[i];
    }
    CHECK(numel == nb_tensor_numel(t));
    CHECK(!nb_tensor_grad_fn(t) || nb_tensor_requires_grad(t));
    CHECK(nb_is_grad_enabled() || !nb_tensor_grad_fn(t));
}

/* Take a new reference into the slots (or drop it when it is too large to keep working on). */
static void keep(fz *f, nb_tensor *t)
{
    check_tensor(t);
    if (nb_tensor_numel(t) > MAX_NUMEL) {
        nb_release(t);
        return;
    }
    if (f->n < NSLOT) {
        f->slot[f->n++] = t;
        return;
    }
    nb_release(f->slot[f->next]);
    f->slot[f->next] = t;
    f->next = (f->next + 1) % NSLOT;
}

static nb_status push(fz *f, nb_tensor *t)
{
    if (!t) return nb_last_error()->code;
    keep(f, t);
    return NB_OK;
}

/* The public function called, then its result kept: CALL(nb_relu, x). */
#define CALL(fn, ...) (f->called = #fn, fn(__VA_ARGS__))
#define RET(fn, ...)  return push(f, CALL(fn, __VA_ARGS__))

static void check_grads(fz *f)
{
    for (int i = 0; i < f->n; i++) {
        nb_tensor *t = f->slot[i];
        if (!nb_tensor_is_leaf(t) && !nb_tensor_retains_grad(t)) continue;
        const nb_tensor *g = nb_tensor_grad(t);
        if (!g) continue;
        CHECK(nb_tensor_ndim(g) == nb_tensor_ndim(t));
        for (int k = 0; k < nb_tensor_ndim(t); k++)
            CHECK(nb_tensor_shape(g)[k] == nb_tensor_shape(t)[k]);
    }
}

/* ---- the rows that are not of a common signature ----------------------------------------- */

/* A leaf of a shape and values from the bytes (at most 4 dims of 0..4), maybe requiring grad. */
static nb_status op_new(fz *f)
{
    float data[256];
    nb_shape s = {rd(f) % 5, {0}};
    int64_t numel = 1;
    for (int i = 0; i < s.ndim; i++) numel *= s.dims[i] = rd(f) % 5;
    for (int64_t i = 0; i < numel; i++) data[i] = value(f);
    const bool grad = flag(f);
    nb_tensor *t = CALL(nb_from_data, data, s);
    if (t && grad) CHECK(CALL(nb_requires_grad_, t, true) == t);
    return push(f, t);
}

/* A leaf shaped as an operand with some dims set to 1 and leading dims dropped: it broadcasts. */
static nb_status op_new_like(fz *f)
{
    nb_tensor *a = arg(f);
    const uint8_t mask = rd(f), drop = rd(f) % 3;
    const float v = value(f);
    const bool grad = flag(f);
    nb_shape s = nb_tensor_size(a);
    const int k = drop < s.ndim ? drop : s.ndim;
    s.ndim -= k;
    memmove(s.dims, s.dims + k, (size_t)s.ndim * sizeof s.dims[0]);
    for (int i = 0; i < s.ndim; i++)
        if (mask >> i & 1) s.dims[i] = 1;
    nb_tensor *t = CALL(nb_full, s, v);
    if (t && grad) CHECK(CALL(nb_requires_grad_, t, true) == t);
    return push(f, t);
}

/* Class indices for an operand's logits ([N, C] or [C]): some valid, some not. */
static nb_status op_classes(fz *f)
{
    nb_tensor *a = arg(f);
    const int nd = nb_tensor_ndim(a);
    const int64_t c = nd >= 1 ? nb_tensor_shape(a)[nd - 1] : 1;
    float data[64];
    nb_shape s = nd >= 2 ? (nb_shape){1, {nb_tensor_shape(a)[0]}} : NB_SHAPE0;
    if (s.ndim && (s.dims[0] < 0 || s.dims[0] > 64)) s.dims[0] = 64;
    const int64_t n = s.ndim ? s.dims[0] : 1;
    for (int64_t i = 0; i < n; i++) {
        uint8_t b = rd(f);
        data[i] = b >= 250 ? (b == 250   ? -100.0f
                              : b == 251 ? 0.5f
                                         : (float)c)
                           : (float)(c >= 0 && c < 256 ? b % (c + 1) : b);
    }
    RET(nb_from_data, data, s);
}

static nb_status op_gelu(fz *f)
{
    nb_tensor *a = arg(f);
    RET(nb_gelu, a, (nb_gelu_approximate)(rd(f) % 3));
}

static nb_status op_dropout(fz *f)
{
    nb_tensor *a = arg(f);
    const double p = param(f);
    RET(nb_dropout_gen, a, p, flag(f), f->gen);
}

static nb_status op_where(fz *f)
{
    nb_tensor *c = arg(f), *a = arg(f), *b = arg(f);
    RET(nb_where, c, a, b);
}

static nb_status op_masked_fill(fz *f)
{
    nb_tensor *a = arg(f), *m = arg(f);
    RET(nb_masked_fill, a, m, value(f));
}

static nb_status op_max_dim(fz *f)
{
    nb_tensor *a = arg(f), *idx = NULL;
    const int dim = dim_of(f);
    const bool keepdim = flag(f), min = flag(f), with_indices = flag(f);
    nb_tensor *y = min ? CALL(nb_min_dim, a, dim, keepdim, with_indices ? &idx : NULL)
                       : CALL(nb_max_dim, a, dim, keepdim, with_indices ? &idx : NULL);
    if (!y) {
        CHECK(!idx);
        return nb_last_error()->code;
    }
    CHECK(!with_indices || (idx && !nb_tensor_requires_grad(idx)));
    if (idx) keep(f, idx);
    keep(f, y);
    return NB_OK;
}

static nb_status op_var(fz *f)
{
    nb_tensor *a = arg(f);
    const nb_dims d = dims_of(f);
    const int64_t correction = index_param(f);
    const bool keepdim = flag(f);
    if (flag(f)) RET(nb_std, a, d, correction, keepdim);
    RET(nb_var, a, d, correction, keepdim);
}

static nb_status op_norm(fz *f)
{
    nb_tensor *a = arg(f);
    const float p = value(f);
    const nb_dims d = dims_of(f);
    RET(nb_norm, a, p, d, flag(f));
}

static nb_status op_scatter_add(fz *f)
{
    nb_tensor *a = arg(f), *idx = arg(f), *src = arg(f);
    RET(nb_scatter_add, a, dim_of(f), idx, src);
}

static nb_status op_embedding(fz *f)
{
    nb_tensor *w = arg(f), *ids = arg(f);
    RET(nb_embedding, w, ids, index_param(f));
}

static nb_status op_addmm(fz *f)
{
    nb_tensor *in = arg(f), *m1 = arg(f), *m2 = arg(f);
    const float beta = value(f);
    RET(nb_addmm, in, m1, m2, beta, value(f));
}

static nb_status op_linear(fz *f)
{
    nb_tensor *x = arg(f), *w = arg(f), *b = opt(f);
    RET(nb_linear, x, w, b);
}

static nb_status op_bce_logits(fz *f)
{
    nb_tensor *x = arg(f), *y = arg(f), *w = opt(f), *pw = opt(f);
    RET(nb_binary_cross_entropy_with_logits, x, y, w, pw, reduction_of(f));
}

static nb_status op_bce(fz *f)
{
    nb_tensor *x = arg(f), *y = arg(f), *w = opt(f);
    RET(nb_binary_cross_entropy, x, y, w, reduction_of(f));
}

static nb_status op_smooth_l1(fz *f)
{
    nb_tensor *x = arg(f), *y = arg(f);
    const nb_reduction r = reduction_of(f);
    const double p = param(f) * 2.0 - 0.5;
    if (flag(f)) RET(nb_huber_loss, x, y, r, p);
    RET(nb_smooth_l1_loss, x, y, r, p);
}

static nb_status op_kl_div(fz *f)
{
    nb_tensor *x = arg(f), *y = arg(f);
    const nb_reduction r = reduction_of(f);
    RET(nb_kl_div, x, y, r, flag(f));
}

static nb_status op_nll(fz *f)
{
    nb_tensor *x = arg(f), *t = arg(f), *w = opt(f);
    const int64_t ignore = index_param(f);
    RET(nb_nll_loss, x, t, w, ignore, reduction_of(f));
}

static nb_status op_cross_entropy(fz *f)
{
    nb_tensor *x = arg(f), *t = arg(f), *w = opt(f);
    const int64_t ignore = index_param(f);
    const nb_reduction r = reduction_of(f);
    RET(nb_cross_entropy, x, t, w, ignore, r, param(f));
}

static nb_status op_layer_norm(fz *f)
{
    nb_tensor *x = arg(f), *w = opt(f), *b = opt(f);
    nb_shape s;
    if (flag(f)) { /* the last k dims of x */
        const nb_shape xs = nb_tensor_size(x);
        const int k = xs.ndim ? 1 + rd(f) % xs.ndim : 0;
        s.ndim = k;
        memcpy(s.dims, xs.dims + xs.ndim - k, (size_t)k * sizeof s.dims[0]);
    } else {
        s = shape_of(f);
    }
    RET(nb_layer_norm, x, s, w, b, param(f));
}

static nb_status op_slice(fz *f)
{
    nb_tensor *a = arg(f);
    const int dim = dim_of(f);
    const int64_t start = pos_of(f), end = pos_of(f), step = size_of(f);
    RET(nb_slice, a, dim, start, end, step);
}

static nb_status op_narrow(fz *f)
{
    nb_tensor *a = arg(f);
    const int dim = dim_of(f);
    const int64_t start = pos_of(f);
    RET(nb_narrow, a, dim, start, size_of(f));
}

/* nb_split or nb_chunk into up to 8 places: every piece joins the slots. */
static nb_status op_split(fz *f)
{
    nb_tensor *a = arg(f), *out[8] = {0};
    const int dim = dim_of(f), cap = rd(f) % 9;
    const int64_t size = size_of(f);
    const int n = flag(f) ? CALL(nb_chunk, a, (int)size, dim, out, cap)
                          : CALL(nb_split, a, size, dim, out, cap);
    if (n < 0) {
        for (int i = 0; i < 8; i++) CHECK(!out[i]);
        return (nb_status)n;
    }
    CHECK(n <= cap);
    for (int i = 0; i < n; i++) keep(f, out[i]);
    return NB_OK;
}

static nb_status op_cat(fz *f)
{
    nb_tensor *ts[3];
    const int n = 1 + rd(f) % 3;
    for (int i = 0; i < n; i++) ts[i] = arg(f);
    const int dim = dim_of(f);
    if (flag(f)) RET(nb_stack, ts, n, dim);
    RET(nb_cat, ts, n, dim);
}

static nb_status op_fill(fz *f)
{
    nb_tensor *a = arg(f);
    return CALL(nb_fill_, a, value(f));
}

static nb_status op_set(fz *f)
{
    nb_tensor *a = arg(f);
    int64_t index[NB_MAX_DIMS];
    for (int i = 0; i < nb_tensor_ndim(a); i++) index[i] = pos_of(f);
    return CALL(nb_tensor_set, a, index, value(f));
}

static nb_status op_random(fz *f)
{
    nb_tensor *a = arg(f);
    const double x = (double)value(f), y = (double)value(f);
    if (flag(f)) return CALL(nb_normal_, a, x, y, f->gen);
    return CALL(nb_uniform_, a, x, y, f->gen);
}

static nb_status op_backward(fz *f)
{
    nb_tensor *root = arg(f), *grad = opt(f);
    nb_status st = CALL(nb_backward, root, grad, flag(f));
    if (st == NB_OK) check_grads(f);
    return st;
}

static nb_status op_grad(fz *f)
{
    nb_tensor *out[2], *in[3], *gout[2], *res[3] = {0};
    const int no = 1 + rd(f) % 2, ni = 1 + rd(f) % 3;
    for (int i = 0; i < no; i++) out[i] = arg(f);
    for (int i = 0; i < ni; i++) in[i] = arg(f);
    const bool with_gout = flag(f);
    for (int i = 0; i < no; i++) gout[i] = opt(f);
    nb_grad_options o = {.retain_graph = flag(f), .allow_unused = flag(f)};
    nb_status st =
        CALL(nb_grad, out, no, in, ni, with_gout ? (const nb_tensor *const *)gout : NULL, &o, res);
    for (int i = 0; i < ni; i++) {
        if (st != NB_OK || !res[i]) {
            CHECK(st == NB_OK ? o.allow_unused : !res[i]);
            continue;
        }
        CHECK(nb_tensor_ndim(res[i]) == nb_tensor_ndim(in[i]));
        for (int k = 0; k < nb_tensor_ndim(in[i]); k++)
            CHECK(nb_tensor_shape(res[i])[k] == nb_tensor_shape(in[i])[k]);
    }
    for (int i = 0; i < ni; i++) /* keeping one may release a slot that is a later input */
        if (res[i]) keep(f, res[i]);
    if (st == NB_OK) check_grads(f);
    return st;
}

static nb_status op_requires_grad(fz *f)
{
    nb_tensor *a = arg(f);
    const bool on = flag(f);
    if (!CALL(nb_requires_grad_, a, on)) return nb_last_error()->code;
    CHECK(nb_tensor_requires_grad(a) == on);
    return NB_OK;
}

static nb_status op_retain_grad(fz *f)
{
    nb_tensor *a = arg(f);
    return CALL(nb_retain_grad, a);
}

static nb_status op_zero_grad(fz *f)
{
    nb_tensor *a = arg(f);
    return CALL(nb_zero_grad, a, flag(f));
}

static nb_status op_set_grad(fz *f)
{
    nb_tensor *a = arg(f), *g = opt(f);
    return CALL(nb_tensor_set_grad, a, g);
}

/* The .grad of an operand (borrowed), kept as a slot of its own. */
static nb_status op_get_grad(fz *f)
{
    nb_tensor *g = nb_tensor_grad(arg(f));
    if (g) keep(f, nb_retain(g));
    return NB_OK;
}

static nb_status op_grad_mode(fz *f)
{
    nb_set_grad_enabled(flag(f));
    return NB_OK;
}

static nb_status op_format(fz *f)
{
    char buf[256];
    nb_tensor *a = arg(f);
    const size_t size = rd(f);
    const int64_t n = CALL(nb_tensor_format, a, buf, size);
    if (n < 0) return (nb_status)n;
    CHECK(!size || strlen(buf) == ((size_t)n < size ? (size_t)n : size - 1));
    return NB_OK;
}

static nb_status op_item(fz *f)
{
    float v;
    nb_tensor *a = arg(f);
    nb_status st = CALL(nb_tensor_item, a, &v);
    CHECK(st != NB_OK || nb_tensor_numel(a) == 1);
    return st;
}

/* ---- the table ---------------------------------------------------------------------------- */

typedef enum kind {
    K_UNARY,     /* y = op(x) */
    K_UNARY_C,   /* y = op(x), x const */
    K_BINARY,    /* y = op(a, b) */
    K_SCALAR,    /* y = op(x, s) */
    K_SCALAR2,   /* y = op(x, s, t) */
    K_DIMS,      /* y = op(x, dims, keepdim) */
    K_DIMS_C,    /* y = op(x, dims, keepdim), x const */
    K_DIM,       /* y = op(x, dim) */
    K_DIM_KEEP,  /* y = op(x, dim, keepdim) */
    K_DIM2,      /* y = op(x, dim, dim) */
    K_DIMLIST,   /* y = op(x, dims) */
    K_SHAPE,     /* y = op(x, shape) */
    K_INDEX,     /* y = op(x, dim, index) */
    K_ALL,       /* y = op(x), a reduction to 0-d */
    K_LOSS,      /* y = op(input, target, reduction) */
    K_INPLACE,   /* op(a, b) in place */
    K_INPLACE_S, /* op(a, s) in place */
    K_ROW,       /* a row function of its own */
} kind;

typedef struct row {
    const char *name;
    kind kind;
    union {
        nb_tensor *(*unary)(nb_tensor *);
        nb_tensor *(*unary_c)(const nb_tensor *);
        nb_tensor *(*binary)(nb_tensor *, nb_tensor *);
        nb_tensor *(*scalar)(nb_tensor *, float);
        nb_tensor *(*scalar2)(nb_tensor *, float, float);
        nb_tensor *(*dims)(nb_tensor *, nb_dims, bool);
        nb_tensor *(*dims_c)(const nb_tensor *, nb_dims, bool);
        nb_tensor *(*dim)(nb_tensor *, int);
        nb_tensor *(*dim_keep)(nb_tensor *, int, bool);
        nb_tensor *(*dim2)(nb_tensor *, int, int);
        nb_tensor *(*dimlist)(nb_tensor *, nb_dims);
        nb_tensor *(*shape)(nb_tensor *, nb_shape);
        nb_tensor *(*index)(nb_tensor *, int, nb_tensor *);
        nb_tensor *(*loss)(nb_tensor *, nb_tensor *, nb_reduction);
        nb_status (*inplace)(nb_tensor *, const nb_tensor *);
        nb_status (*inplace_s)(nb_tensor *, float);
        nb_status (*row)(fz *);
    } fn;
} row;

/* clang-format off */
#define ROW(k, member, f) {#f, k, {.member = f}}
/* clang-format on */
#define U(f)  ROW(K_UNARY, unary, f)
#define UC(f) ROW(K_UNARY_C, unary_c, f)
#define B(f)  ROW(K_BINARY, binary, f)
#define S(f)  ROW(K_SCALAR, scalar, f)
#define S2(f) ROW(K_SCALAR2, scalar2, f)
#define D(f)  ROW(K_DIMS, dims, f)
#define DC(f) ROW(K_DIMS_C, dims_c, f)
#define D1(f) ROW(K_DIM, dim, f)
#define DK(f) ROW(K_DIM_KEEP, dim_keep, f)
#define D2(f) ROW(K_DIM2, dim2, f)
#define DL(f) ROW(K_DIMLIST, dimlist, f)
#define SH(f) ROW(K_SHAPE, shape, f)
#define IX(f) ROW(K_INDEX, index, f)
#define A(f)  ROW(K_ALL, unary, f)
#define L(f)  ROW(K_LOSS, loss, f)
#define I(f)  ROW(K_INPLACE, inplace, f)
#define IS(f) ROW(K_INPLACE_S, inplace_s, f)
#define R(f)  ROW(K_ROW, row, f)

/* The rows; scripts/make_fuzz_corpus.py finds them by name, in this order. */
static const row rows[] = {
    R(op_new),
    R(op_new_like),
    R(op_classes),
    U(nb_sigmoid),
    U(nb_relu),
    U(nb_exp),
    U(nb_expm1),
    U(nb_log),
    U(nb_log2),
    U(nb_log1p),
    U(nb_sqrt),
    U(nb_rsqrt),
    U(nb_reciprocal),
    U(nb_square),
    U(nb_sin),
    U(nb_cos),
    U(nb_tanh),
    U(nb_abs),
    U(nb_sign),
    U(nb_neg),
    U(nb_silu),
    U(nb_logsigmoid),
    U(nb_detach),
    UC(nb_clone),
    UC(nb_zeros_like),
    UC(nb_randn_like),
    S(nb_pow_scalar),
    S(nb_leaky_relu),
    S(nb_elu),
    S(nb_add_scalar),
    S(nb_sub_scalar),
    S(nb_mul_scalar),
    S(nb_div_scalar),
    S2(nb_clamp),
    S2(nb_hardtanh),
    S2(nb_softplus),
    R(op_gelu),
    R(op_dropout),
    B(nb_add),
    B(nb_sub),
    B(nb_mul),
    B(nb_div),
    B(nb_pow),
    B(nb_maximum),
    B(nb_minimum),
    B(nb_eq),
    B(nb_ne),
    B(nb_lt),
    B(nb_le),
    B(nb_gt),
    B(nb_ge),
    S(nb_eq_scalar),
    S(nb_lt_scalar),
    S(nb_ge_scalar),
    R(op_where),
    R(op_masked_fill),
    B(nb_matmul),
    B(nb_bmm),
    B(nb_outer),
    R(op_addmm),
    R(op_linear),
    D(nb_sum),
    D(nb_mean),
    D(nb_amax),
    D(nb_amin),
    D(nb_logsumexp),
    DC(nb_argmax),
    DC(nb_argmin),
    A(nb_max),
    A(nb_min),
    A(nb_prod),
    DK(nb_prod_dim),
    R(op_max_dim),
    R(op_var),
    R(op_norm),
    D1(nb_softmax),
    D1(nb_log_softmax),
    IX(nb_index_select),
    IX(nb_gather),
    R(op_scatter_add),
    R(op_embedding),
    L(nb_mse_loss),
    L(nb_l1_loss),
    R(op_bce_logits),
    R(op_bce),
    R(op_smooth_l1),
    R(op_kl_div),
    R(op_nll),
    R(op_cross_entropy),
    R(op_layer_norm),
    SH(nb_reshape),
    SH(nb_view),
    DL(nb_squeeze),
    D1(nb_unsqueeze),
    D2(nb_flatten),
    R(op_slice),
    R(op_narrow),
    D2(nb_transpose),
    DL(nb_permute),
    U(nb_t),
    DL(nb_flip),
    SH(nb_expand),
    SH(nb_repeat),
    R(op_split),
    R(op_cat),
    I(nb_add_),
    I(nb_sub_),
    I(nb_mul_),
    I(nb_div_),
    IS(nb_add_scalar_),
    IS(nb_mul_scalar_),
    R(op_fill),
    R(op_set),
    R(op_random),
    R(op_backward),
    R(op_backward),
    R(op_grad),
    R(op_requires_grad),
    R(op_retain_grad),
    R(op_zero_grad),
    R(op_set_grad),
    R(op_get_grad),
    R(op_grad_mode),
    R(op_format),
    R(op_item),
};
#define NROWS ((int)(sizeof rows / sizeof rows[0]))

/* Run one row; returns its status, with f->called the function whose error it is. */
static nb_status run(fz *f, const row *r)
{
    f->called = r->name;
    nb_tensor *a, *b;
    switch (r->kind) {
    case K_UNARY:
    case K_ALL:
        return push(f, r->fn.unary(arg(f)));
    case K_UNARY_C:
        return push(f, r->fn.unary_c(arg(f)));
    case K_BINARY:
        a = arg(f);
        b = arg(f);
        return push(f, r->fn.binary(a, b));
    case K_SCALAR:
        a = arg(f);
        return push(f, r->fn.scalar(a, value(f)));
    case K_SCALAR2: {
        a = arg(f);
        const float s = value(f);
        return push(f, r->fn.scalar2(a, s, value(f)));
    }
    case K_DIMS:
    case K_DIMS_C: {
        a = arg(f);
        const nb_dims d = dims_of(f);
        const bool keepdim = flag(f);
        return push(f, r->kind == K_DIMS ? r->fn.dims(a, d, keepdim) : r->fn.dims_c(a, d, keepdim));
    }
    case K_DIM:
        a = arg(f);
        return push(f, r->fn.dim(a, dim_of(f)));
    case K_DIM_KEEP: {
        a = arg(f);
        const int d = dim_of(f);
        return push(f, r->fn.dim_keep(a, d, flag(f)));
    }
    case K_DIM2: {
        a = arg(f);
        const int d = dim_of(f);
        return push(f, r->fn.dim2(a, d, dim_of(f)));
    }
    case K_DIMLIST:
        a = arg(f);
        return push(f, r->fn.dimlist(a, dims_of(f)));
    case K_SHAPE:
        a = arg(f);
        return push(f, r->fn.shape(a, shape_of(f)));
    case K_INDEX: {
        a = arg(f);
        b = arg(f);
        const int d = dim_of(f);
        return push(f, r->fn.index(a, d, b));
    }
    case K_LOSS:
        a = arg(f);
        b = arg(f);
        return push(f, r->fn.loss(a, b, reduction_of(f)));
    case K_INPLACE:
        a = arg(f);
        b = arg(f);
        return r->fn.inplace(a, b);
    case K_INPLACE_S:
        a = arg(f);
        return r->fn.inplace_s(a, value(f));
    case K_ROW:
        return r->fn.row(f);
    }
    return NB_OK;
}

static void check_error(const char *fn, nb_status st)
{
    const nb_error *e = nb_last_error();
    char prefix[64];
    snprintf(prefix, sizeof prefix, "%s: ", fn);
    CHECK(st < 0 && st >= NB_ECHECK && e->code == st);
    if (!fuzz_one_line(prefix)) {
        fprintf(stderr, "fuzz_graph: %s failed with \"%s\"\n", fn, e->message);
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool ready, trace;
    if (!ready) {
        trace = getenv("FUZZ_GRAPH_TRACE") != NULL; /* each row's name, status and message */
        static const nb_allocator counting = {fz_alloc, fz_free, NULL};
        nb_set_allocator(&counting);
        nb_set_warning_handler(on_warning, NULL);
        nb_set_num_threads(1);
        ready = true;
    }
    nb_manual_seed(0);
    const int64_t live = live_blocks;
    nb_error_clear();
    fz f = {.p = data, .end = data + size, .gen = nb_generator_new(0)};
    CHECK(f.gen);
    f.slot[f.n++] = nb_requires_grad_(nb_scalar(1.5f), true);
    CHECK(f.slot[0]);
    for (int steps = 0; f.p < f.end && steps < 64; steps++) {
        const row *r = &rows[rd(&f) % NROWS];
        nb_status st = run(&f, r);
        if (trace)
            fprintf(stderr, "%s: %s %s\n", r->name, nb_status_name(st), nb_last_error()->message);
        if (st != NB_OK) check_error(f.called, st);
        nb_error_clear();
    }
    nb_set_grad_enabled(true);
    for (int i = 0; i < f.n; i++) nb_release(f.slot[i]);
    nb_generator_free(f.gen);
    CHECK(live_blocks == live);
    nb_error_clear();
    return 0;
}
