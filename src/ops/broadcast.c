/*
 * Broadcasting, written once: the shape rule, the elementwise loop that every elementwise
 * op and gradient runs on, the reduction back to a shape, and the helpers a backward writes
 * its gradients with.
 */
#include <string.h>

#include "ops/internal.h"

nb_status nb__broadcast_shape(const char *fn, const nb_shape *a, const nb_shape *b, nb_shape *out)
{
    int nd = a->ndim > b->ndim ? a->ndim : b->ndim;
    out->ndim = nd;
    for (int i = 0; i < nd; i++) {
        int ia = i - (nd - a->ndim), ib = i - (nd - b->ndim);
        int64_t da = ia >= 0 ? a->dims[ia] : 1, db = ib >= 0 ? b->dims[ib] : 1;
        if (da != db && da != 1 && db != 1) {
            char sa[NB__SHAPE_STR], sb[NB__SHAPE_STR];
            return nb__error(NB_ESHAPE, fn,
                             "shapes %s and %s cannot be broadcast (%lld != %lld at dimension %d)",
                             nb__shape_str(sa, a->ndim, a->dims),
                             nb__shape_str(sb, b->ndim, b->dims), (long long)da, (long long)db, i);
        }
        out->dims[i] = da == 1 ? db : da;
    }
    return NB_OK;
}

void nb__broadcast_strides(const nb_shape *small, const nb_shape *big, int64_t *strides)
{
    int64_t acc = 1;
    for (int i = big->ndim - 1; i >= 0; i--) {
        int j = i - (big->ndim - small->ndim);
        int64_t d = j >= 0 ? small->dims[j] : 1;
        strides[i] = d == 1 ? 0 : acc;
        acc *= d;
    }
}

bool nb__shape_eq(const nb_shape *a, const nb_shape *b)
{
    if (a->ndim != b->ndim) return false;
    for (int i = 0; i < a->ndim; i++)
        if (a->dims[i] != b->dims[i]) return false;
    return true;
}

static int64_t shape_numel(const nb_shape *s)
{
    int64_t n = 1;
    for (int i = 0; i < s->ndim; i++) n = nb__size_mul(n, s->dims[i]);
    return n;
}

/* ---- the elementwise loop -------------------------------------------------------------- */

#define CHUNK 256

/*
 * Threads. A loop of NB__PARALLEL_MIN elements or more is cut (nb__split) into tasks of
 * NB__TASK_ELEMS elements (of whole rows, for a broadcast) on the thread pool. The cut depends
 * on the size alone, and a kernel's every output depends on its own element only, so the
 * bits are the same at any thread count. Smaller loops run on their caller: the main job's
 * largest elementwise tensors (32 768 elements) stay there.
 */

/* f over n elements on the calling thread */
static void ew_seq(nb__ew_fn f, const float *k, float *out, bool acc, const float *const *p,
                   const int64_t *s, int64_t n)
{
    bool number = false, contiguous = true;
    for (int j = 0; j < NB__EW_MAX; j++) {
        if (!p[j]) continue;
        number |= s[j] == 0;
        contiguous &= s[j] == 0 || s[j] == 1;
    }
    const bool expand = number && contiguous && n >= 64;
    if (!acc && !expand) {
        f(out, p, s, n, k);
        return;
    }
    float tmp[CHUNK], copies[NB__EW_MAX][CHUNK];
    int64_t ones[NB__EW_MAX] = {1, 1, 1, 1};
    if (expand) /* one bound and the number in a local, so that the fill vectorises */
        for (int j = 0; j < NB__EW_MAX; j++) {
            if (!p[j] || s[j] != 0) continue;
            const float v = p[j][0];
            const int64_t len = n < CHUNK ? n : CHUNK;
            for (int64_t i = 0; i < len; i++) copies[j][i] = v;
        }
    for (int64_t at = 0; at < n; at += CHUNK) {
        int64_t len = n - at < CHUNK ? n - at : CHUNK;
        const float *q[NB__EW_MAX];
        for (int j = 0; j < NB__EW_MAX; j++)
            q[j] = !p[j] ? NULL : expand && s[j] == 0 ? copies[j] : p[j] + at * s[j];
        float *dst = acc ? tmp : out + at;
        f(dst, q, expand ? ones : s, len, k);
        if (acc)
            for (int64_t i = 0; i < len; i++) out[at + i] += tmp[i];
    }
}

/*
 * One elementwise loop on the pool: a flat run, or the rows of a broadcast, whose operand j
 * advances by st[j][d] along output dim d. Tasks read operands that no task writes: out is
 * an operand only element for element (an in-place op), as the ops reject other overlaps.
 */
typedef struct ew_job {
    nb__ew_fn f;
    const float *k;
    float *out;
    bool acc;
    const float *p[NB__EW_MAX];
    int64_t s[NB__EW_MAX];
    int64_t inner; /* a row's elements, for rows */
    int nd;
    int64_t dims[NB_MAX_DIMS];
    int64_t st[NB__EW_MAX][NB_MAX_DIMS];
} ew_job;

/* elements [lo, hi) of a flat run */
static void ew_flat(void *ctx, int64_t lo, int64_t hi)
{
    const ew_job *j = ctx;
    const float *q[NB__EW_MAX];
    for (int i = 0; i < NB__EW_MAX; i++) q[i] = j->p[i] ? j->p[i] + lo * j->s[i] : NULL;
    ew_seq(j->f, j->k, j->out + lo, j->acc, q, j->s, hi - lo);
}

/* rows [r0, r1) of a broadcast, walking the outer dims like an odometer from row r0 */
static void ew_rows(void *ctx, int64_t r0, int64_t r1)
{
    const ew_job *j = ctx;
    int nd = j->nd;
    int64_t off[NB__EW_MAX] = {0}, idx[NB_MAX_DIMS] = {0};
    int64_t rest = r0;
    for (int d = nd - 2; d >= 0; d--) {
        idx[d] = rest % j->dims[d];
        rest /= j->dims[d];
        for (int i = 0; i < NB__EW_MAX; i++) off[i] += j->p[i] ? idx[d] * j->st[i][d] : 0;
    }
    for (int64_t r = r0; r < r1; r++) {
        const float *q[NB__EW_MAX];
        for (int i = 0; i < NB__EW_MAX; i++) q[i] = j->p[i] ? j->p[i] + off[i] : NULL;
        ew_seq(j->f, j->k, j->out + r * j->inner, j->acc, q, j->s, j->inner);
        for (int d = nd - 2; d >= 0; d--) {
            for (int i = 0; i < NB__EW_MAX; i++) off[i] += j->p[i] ? j->st[i][d] : 0;
            if (++idx[d] < j->dims[d]) break;
            for (int i = 0; i < NB__EW_MAX; i++) off[i] -= j->p[i] ? j->st[i][d] * j->dims[d] : 0;
            idx[d] = 0;
        }
    }
}

/* j's loop and operands */
static void ew_job_init(ew_job *j, nb__ew_fn f, const float *k, float *out, bool acc,
                        const float *const *p, const int64_t *s)
{
    *j = (ew_job){.f = f, .k = k, .out = out, .acc = acc};
    memcpy(j->p, p, sizeof j->p);
    memcpy(j->s, s, sizeof j->s);
}

void nb__ew_run(nb__ew_fn f, const float *k, float *out, bool acc, const float *const *p,
                const int64_t *s, int64_t n)
{
    if (n < NB__PARALLEL_MIN) {
        ew_seq(f, k, out, acc, p, s, n);
        return;
    }
    ew_job j;
    ew_job_init(&j, f, k, out, acc, p, s);
    nb__split(n, 1, ew_flat, &j);
}

void nb__ew_apply(nb__ew_fn f, const float *k, float *out, bool acc, const nb_shape *os, int n,
                  const nb__operand *ops)
{
    int64_t numel = shape_numel(os);
    if (numel == 0) return;
    const float *p[NB__EW_MAX] = {NULL};
    int64_t s[NB__EW_MAX] = {1, 1, 1, 1};
    bool flat = true; /* every operand is either the whole shape or a single value */
    for (int j = 0; j < n; j++) {
        p[j] = ops[j].data;
        if (!p[j] || nb__shape_eq(ops[j].shape, os)) continue;
        if (shape_numel(ops[j].shape) == 1)
            s[j] = 0;
        else
            flat = false;
    }
    if (flat) {
        nb__ew_run(f, k, out, acc, p, s, numel);
        return;
    }
    /* rows along the last dim, each one run; the outer dims advance each operand by its
     * broadcast strides */
    ew_job j;
    int nd = os->ndim;
    ew_job_init(&j, f, k, out, acc, p, s);
    for (int i = 0; i < n; i++) {
        if (!p[i]) continue;
        nb__broadcast_strides(ops[i].shape, os, j.st[i]);
        j.s[i] = j.st[i][nd - 1];
    }
    j.nd = nd;
    memcpy(j.dims, os->dims, (size_t)nd * sizeof *j.dims);
    j.inner = os->dims[nd - 1];
    nb__split(numel / j.inner, j.inner, ew_rows, &j);
}

void nb__ew_unary(nb__ew_fn f, const float *k, const nb_tensor *x, nb_tensor *out)
{
    const float *p[NB__EW_MAX] = {nb__data(x), NULL, NULL, NULL};
    static const int64_t s[NB__EW_MAX] = {1, 1, 1, 1};
    if (x->numel) nb__ew_run(f, k, nb__data(out), false, p, s, x->numel);
}

/* ---- reductions to a shape ------------------------------------------------------------- */

double nb__sum_contiguous(const float *x, int64_t n)
{
    /* 8 independent partial sums the compiler keeps in vector registers: one running sum
     * would wait on each add's latency */
    double s[8] = {0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++) s[j] += (double)x[i + j];
    double tail = 0.0;
    for (; i < n; i++) tail += (double)x[i];
    return (((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]))) + tail;
}

/*
 * A sum over [0, n) of NB__PARALLEL_MIN or more, in chunks whose size follows n alone
 * (NB__TASK_ELEMS, or more so that there are at most SUM_MAX_CHUNKS, a multiple of 64), each
 * summed by fn on the pool and the chunks' sums added in order: the same bits at any thread
 * count.
 */
#define SUM_MAX_CHUNKS 1024

typedef struct chunk_job {
    nb__chunk_fn fn;
    void *ctx;
    int64_t n, per;
    double *part;
} chunk_job;

static void chunk_task(void *ctx, int64_t t)
{
    const chunk_job *j = ctx;
    int64_t lo = t * j->per, hi = j->n - lo < j->per ? j->n : lo + j->per;
    j->part[t] = j->fn(j->ctx, lo, hi);
}

double nb__sum_chunks(int64_t n, nb__chunk_fn fn, void *ctx)
{
    if (n < NB__PARALLEL_MIN) return fn(ctx, 0, n);
    int64_t per = NB__TASK_ELEMS, least = (n + SUM_MAX_CHUNKS - 1) / SUM_MAX_CHUNKS;
    if (least > per) per = (least + 63) / 64 * 64;
    double part[SUM_MAX_CHUNKS];
    chunk_job j = {fn, ctx, n, per, part};
    int64_t chunks = (n + per - 1) / per;
    nb__parallel_for(chunks, chunk_task, &j);
    double s = 0.0;
    for (int64_t t = 0; t < chunks; t++) s += part[t];
    return s;
}

static double sum_chunk(void *ctx, int64_t lo, int64_t hi)
{
    return nb__sum_contiguous(*(const float **)ctx + lo, hi - lo);
}

double nb__sum_all(const float *x, int64_t n)
{
    return nb__sum_chunks(n, sum_chunk, &x);
}

NB__EW_KERNEL(scaled_copy, V0 *k[0])

/*
 * A large reduction that splits by outputs, on the pool: of trailing dims (output r the sum of
 * g's block r, in runs of inner as nb__sum_to's loop adds them), or of leading dims (output j
 * the column j of g [rows, n], added row after row). Each task does for its outputs what the
 * loop does, in the same order: the same bits at any thread count.
 */
typedef struct sum_job {
    float *dst;
    const float *g;
    float scale;
    int64_t n;     /* outputs */
    int64_t m;     /* g's elements per output: a block (trailing), or rows (leading) */
    int64_t inner; /* trailing: the runs of a block */
} sum_job;

/* outputs [lo, hi) of a sum over trailing dims */
static void sum_blocks(void *ctx, int64_t lo, int64_t hi)
{
    const sum_job *j = ctx;
    for (int64_t r = lo; r < hi; r++)
        for (int64_t at = r * j->m; at < (r + 1) * j->m; at += j->inner)
            j->dst[r] += (float)nb__sum_contiguous(j->g + at, j->inner) * j->scale;
}

/* outputs [lo, hi) of a sum over leading dims: columns of g [m, n] */
static void sum_columns(void *ctx, int64_t lo, int64_t hi)
{
    const sum_job *j = ctx;
    for (int64_t r = 0; r < j->m; r++) {
        const float *row = j->g + r * j->n;
        for (int64_t c = lo; c < hi; c++) j->dst[c] += row[c] * j->scale;
    }
}

/* Whether g (of shape gs) reduces to s along trailing dims only (all reduced dims after all
 * kept ones), or leading dims only; true for either into *trailing. st: s's strides in gs. */
static bool splits_by_outputs(const nb_shape *gs, const int64_t *st, bool *trailing)
{
    bool kept_after_reduced = false, reduced_after_kept = false, seen_kept = false,
         seen_reduced = false;
    for (int i = 0; i < gs->ndim; i++) {
        if (gs->dims[i] == 1) continue;
        if (st[i] != 0) {
            kept_after_reduced |= seen_reduced;
            seen_kept = true;
        } else {
            reduced_after_kept |= seen_kept;
            seen_reduced = true;
        }
    }
    *trailing = !kept_after_reduced;
    return !kept_after_reduced || !reduced_after_kept;
}

/*
 * nb__sum_to's general loop, over indices [lo, hi) of g's dim d0 (the first longer than 1 of
 * all but the last; the dims before it are 1): g's runs of inner, one after the other, each
 * added into its outputs elementwise (a kept run) or summed into one. Where d0 is kept, no two
 * of its indices write the same output, so ranges of them can run on the pool and each output
 * still gets the sum of one thread.
 */
typedef struct sum_slices_job {
    float *dst;
    const float *g;
    const nb_shape *gs;
    const int64_t *st; /* the output's strides in g's dims */
    float scale;
    int d0; /* the dim split */
} sum_slices_job;

static void sum_slices(void *ctx, int64_t lo, int64_t hi)
{
    const sum_slices_job *j = ctx;
    /* locals, so that the stores into dst cannot be taken to change them */
    float *const dst = j->dst;
    const float *const g = j->g, scale = j->scale;
    const int64_t *const st = j->st, *const dims = j->gs->dims;
    const int nd = j->gs->ndim, d0 = j->d0;
    const int64_t inner = dims[nd - 1], slice = shape_numel(j->gs) / dims[d0];
    const bool kept_run = st[nd - 1] != 0;
    for (int64_t a = lo; a < hi; a++) {
        int64_t idx[NB_MAX_DIMS] = {0}, off = a * st[d0];
        for (int64_t at = a * slice; at < (a + 1) * slice; at += inner) {
            const float *row = g + at;
            float *d = dst + off;
            if (kept_run) {
                for (int64_t i = 0; i < inner; i++) d[i] += row[i] * scale;
            } else {
                d[0] += (float)nb__sum_contiguous(row, inner) * scale;
            }
            for (int i = nd - 2; i > d0; i--) {
                off += st[i];
                if (++idx[i] < dims[i]) break;
                off -= st[i] * dims[i];
                idx[i] = 0;
            }
        }
    }
}

/*
 * A sum that reduces its first dims (from d0), keeps dim k (the first kept one after them)
 * and reduces a dim after k: for each index of the dims before k in turn, the slice from k
 * on summed as sum_slices does, in ranges of dim k. An output has one index of dim k, so a
 * range's outputs are its own, and each gets its adds in the order of the loop on one
 * thread.
 */
typedef struct sum_outer_job {
    sum_slices_job sub; /* the slices from dim k on: their shape and strides, split at dim 0 */
    int64_t outer;      /* how many: the product of the dims before k */
} sum_outer_job;

static void sum_outer(void *ctx, int64_t lo, int64_t hi)
{
    const sum_outer_job *j = ctx;
    int64_t slice = shape_numel(j->sub.gs);
    for (int64_t a = 0; a < j->outer; a++) {
        sum_slices_job s = j->sub;
        s.g += a * slice;
        sum_slices(&s, lo, hi);
    }
}

void nb__sum_to(float *dst, const nb_shape *s, bool acc, const float *g, const nb_shape *gs,
                float scale)
{
    int64_t n = shape_numel(s), gn = shape_numel(gs);
    if (nb__shape_eq(s, gs)) { /* nothing to sum */
        nb__ew_apply(scaled_copy, &scale, dst, acc, s, 1, &(nb__operand){g, gs});
        return;
    }
    if (n == 1) { /* everything into one value, in double; a sum is never -0, as PyTorch's
                   * (its accumulator starts at +0), also scaled by -1 */
        float v = (float)nb__sum_all(g, gn) * scale + 0.0f;
        dst[0] = acc ? dst[0] + v : v;
        return;
    }
    if (!acc && n > 0) memset(dst, 0, (size_t)n * sizeof *dst);
    if (gn == 0) return;
    int nd = gs->ndim;
    int64_t st[NB_MAX_DIMS];
    nb__broadcast_strides(s, gs, st);
    int64_t inner = gs->dims[nd - 1];
    bool trailing;
    if (gn >= NB__PARALLEL_MIN && splits_by_outputs(gs, st, &trailing)) {
        sum_job j = {dst, g, scale, n, gn / n, inner};
        if (trailing) {
            nb__split(n, j.m, sum_blocks, &j);
        } else {
            /* one block of columns per thread: each task sweeps every row of g, and a column's
             * sum is added row after row whatever the cut, so the cut may follow the thread
             * count (blocks of 64 or 256 columns took 6-17% longer at one thread) */
            nb__split_per_thread(n, gn / n, sum_columns, &j);
        }
        return;
    }
    int d0 = 0; /* g has 2 dims or more here: a 1-D g sums to itself or to one value */
    while (d0 < nd - 2 && gs->dims[d0] == 1) d0++;
    sum_slices_job j = {dst, g, gs, st, scale, d0};
    int k = d0; /* the first kept dim longer than 1 */
    while (k < nd && (gs->dims[k] == 1 || st[k] == 0)) k++;
    if (gn < NB__PARALLEL_MIN || k == nd || (k > d0 && nb__num_threads() == 1)) {
        sum_slices(&j, 0, gs->dims[d0]);
    } else if (k == d0) { /* kept on both sides of a reduced dim */
        nb__split(gs->dims[d0], gn / gs->dims[d0], sum_slices, &j);
    } else { /* reduced before and after dim k (here k < nd - 1) */
        nb_shape sub = {nd - k, {0}};
        memcpy(sub.dims, gs->dims + k, (size_t)sub.ndim * sizeof *sub.dims);
        sum_outer_job o = {{dst, g, &sub, st + k, scale, 0}, gn / shape_numel(&sub)};
        /* one range per thread: every task visits all the slices, and no output's sum
         * depends on the cut, so the cut may follow the thread count (tasks of 32 768
         * elements took 1.5 times as long at one thread, reading g in short runs; one
         * thread runs the loop above, the same adds in g's order) */
        nb__split_per_thread(sub.dims[0], gn / sub.dims[0], sum_outer, &o);
    }
}

/* ---- recording and writing gradients ---------------------------------------------------- */

nb_tensor *nb__finish(const char *fn, const nb_op *op, nb_tensor *out, int n, nb_tensor *const *in,
                      nb_node **node)
{
    *node = NULL;
    if (!out) return NULL;
    if (nb__record(fn, op, n, in, 1, &out, 0, node) != NB_OK) {
        nb__drop(out);
        return NULL;
    }
    return out;
}

float *nb__grad_dst(nb_node *n, nb_tensor **gx, int i, bool *acc)
{
    *acc = gx[i] != NULL;
    if (!gx[i]) {
        const nb__output *o = &n->next[i].node->out[n->next[i].input_nr];
        gx[i] = nb__new(nb__engine_fn(), o->ndim, o->dims);
        if (!gx[i]) return NULL;
    }
    return nb__data(gx[i]);
}

nb_status nb__grad_sum(nb_node *n, nb_tensor **gx, int i, const nb_tensor *g, float scale)
{
    const nb__output *o = &n->next[i].node->out[n->next[i].input_nr];
    bool same = o->ndim == g->ndim && !memcmp(o->dims, g->shape, (size_t)g->ndim * sizeof *o->dims);
    if (same && !gx[i] && scale == 1.0f) {
        /* passed through unchanged: share g. The engine never writes into a gradient that
         * another reference can see (it copies first), so sharing is safe. */
        gx[i] = nb_retain(nb__unconst(g));
        return NB_OK;
    }
    bool acc;
    float *dst = nb__grad_dst(n, gx, i, &acc);
    if (!dst) return NB_ENOMEM;
    nb_shape is = nb__shape(o->ndim, o->dims), gs = nb__size(g);
    nb__sum_to(dst, &is, acc, nb__data(g), &gs, scale);
    return NB_OK;
}

nb_status nb__grad_take(nb_node *n, nb_tensor **gx, int i, nb_tensor *g)
{
    (void)n;
    if (!g) return nb__last_code();
    if (!gx[i]) {
        gx[i] = g;
        return NB_OK;
    }
    float *d = nb__data(gx[i]);
    const float *s = nb__data(g);
    for (int64_t k = 0; k < g->numel; k++) d[k] += s[k];
    nb__release(g);
    return NB_OK;
}
