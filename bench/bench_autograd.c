/*
 * bench-autograd — workloads W1 and W2 of docs/benchmarks.md: what nabla's autograd costs on top
 * of the arithmetic it asks for.
 *
 *   W1  the seed graph: x[5] = 1, W[5,3], b[3] (requiring grad), y[3] = 1;
 *       z = x·W + b; loss = bce_with_logits(z, y, mean); backward; release; grads to None.
 *       Reported in ns per iteration, twice: with a scope per iteration (the primary row) and
 *       with explicit nb_release calls.
 *   W2  C = A·B, A and B [n,n] requiring grad; loss = sum(C); backward; release; grads to
 *       None. Reported as effective GFLOP/s over its 3 GEMMs (3·2n³ flops) and as the ratio
 *       t_raw3 / t_autograd, where raw3 is the same three cblas_sgemm calls (C = A·B,
 *       dA = G·Bᵀ, dB = Aᵀ·G, beta 0) on preallocated buffers, measured in the same run. The
 *       two are timed in alternation (raw3, autograd, raw3, ...) so that a slow spell of the
 *       machine hits both; the ratio is the median of the pairs' ratios. A phase column
 *       splits one autograd iteration into forward, backward and teardown.
 *
 * Each is checked once against a direct computation before it is timed.
 *
 * --pool repeats every measurement with a caching allocator installed through
 * nb_set_allocator (freed blocks are kept per size and handed out again, so a warm iteration
 * makes no malloc call): an experiment that shows how much of the time is the allocator's.
 *
 *   bench-autograd [--json] [--quick] [--threads 1,2] [--sizes 128,512,1024]
 *                  [--w2-time SECONDS] [--workloads 1,2] [--pool]
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>
#include <nabla/nabla.h>

#include "bench_util.h"

#define MAX_SIZES       16
#define W1_TARGET_NS    1000.0
#define W2_TARGET_RATIO 0.97
#define W2_TARGET_N     1024
/* Normwise: max |got - ref| / max |ref|. */
#define TOLERANCE 1e-5

static void report_nabla_error(const char *what)
{
    fprintf(stderr, "bench-autograd: %s: %s\n", what, nb_last_error()->message);
}

static double max_rel_err(const float *got, const float *ref, size_t count)
{
    double diff = 0.0, scale = 0.0;
    for (size_t i = 0; i < count; i++) {
        diff = fmax(diff, fabs((double)got[i] - (double)ref[i]));
        scale = fmax(scale, fabs((double)ref[i]));
    }
    return scale > 0.0 ? diff / scale : diff;
}

/* ---- the caching allocator of --pool --------------------------------------------------------- */

/*
 * Blocks are 64-byte aligned with a 64-byte header in front that holds their size class (the
 * size rounded up to 64 bytes). A freed block goes on its class's free list and is handed out
 * again by the next allocation of that class. Single-threaded, as nabla's calls here are.
 */
#define POOL_CLASSES  64
#define POOL_HEADER   64
#define POOL_UNPOOLED SIZE_MAX

typedef struct pool_block {
    struct pool_block *next;
} pool_block;

static struct pool_class {
    size_t size;
    pool_block *free;
} pool_class[POOL_CLASSES];
static size_t pool_n_classes;
static size_t pool_mallocs; /* blocks taken from malloc: constant once the loop is warm */

static void *pool_alloc(size_t size, size_t align, void *ctx)
{
    (void)ctx;
    (void)align; /* at most 64 by nb_allocator's contract; every block is 64-aligned */
    if (size > SIZE_MAX - 2 * POOL_HEADER) return NULL;
    size_t rounded = (size + POOL_HEADER - 1) / POOL_HEADER * POOL_HEADER;
    size_t cls = POOL_UNPOOLED;
    for (size_t i = 0; i < pool_n_classes; i++)
        if (pool_class[i].size == rounded) cls = i;
    if (cls == POOL_UNPOOLED && pool_n_classes < POOL_CLASSES) {
        cls = pool_n_classes++;
        pool_class[cls] = (struct pool_class){.size = rounded, .free = NULL};
    }
    if (cls != POOL_UNPOOLED && pool_class[cls].free) {
        pool_block *b = pool_class[cls].free;
        pool_class[cls].free = b->next;
        return b;
    }
    char *base = aligned_alloc(POOL_HEADER, POOL_HEADER + (rounded ? rounded : POOL_HEADER));
    if (!base) return NULL;
    pool_mallocs++;
    memcpy(base, &cls, sizeof cls);
    return base + POOL_HEADER;
}

static void pool_free(void *ptr, void *ctx)
{
    (void)ctx;
    char *base = (char *)ptr - POOL_HEADER;
    size_t cls;
    memcpy(&cls, base, sizeof cls);
    if (cls == POOL_UNPOOLED) {
        free(base);
        return;
    }
    pool_block *b = ptr;
    b->next = pool_class[cls].free;
    pool_class[cls].free = b;
}

/* Give every cached block back to malloc and forget the classes. */
static void pool_drain(void)
{
    for (size_t i = 0; i < pool_n_classes; i++) {
        while (pool_class[i].free) {
            pool_block *b = pool_class[i].free;
            pool_class[i].free = b->next;
            free((char *)b - POOL_HEADER);
        }
    }
    pool_n_classes = 0;
}

/* Install (pool) or restore (default) nabla's allocator; only while no tensor is alive. */
static void use_allocator(bool pool)
{
    static const nb_allocator pool_allocator = {pool_alloc, pool_free, NULL};
    nb_set_allocator(pool ? &pool_allocator : NULL);
    if (!pool) pool_drain();
}

static const char *allocator_name(bool pool)
{
    return pool ? "pool" : "default";
}

/* ---- W1: the seed graph -------------------------------------------------------------------- */

typedef struct w1_ctx {
    nb_tensor *x, *w, *b, *y;
    bool failed; /* an iteration hit an error (reported once) */
} w1_ctx;

static void w1_fail(w1_ctx *c, const char *what)
{
    if (!c->failed) report_nabla_error(what);
    c->failed = true;
}

/* One iteration, temporaries owned by a scope. */
static void w1_scope(void *p)
{
    w1_ctx *c = p;
    nb_scope *s = nb_scope_begin();
    nb_tensor *z = nb_add(nb_matmul(c->x, c->w), c->b);
    nb_tensor *loss = nb_binary_cross_entropy_with_logits(z, c->y, NULL, NULL, NB_MEAN);
    if (!loss || nb_backward(loss, NULL, false) != NB_OK) w1_fail(c, "W1 (scope)");
    if (!s || nb_scope_end(s) != NB_OK) w1_fail(c, "W1 scope");
    nb_zero_grad(c->w, true);
    nb_zero_grad(c->b, true);
}

/* One iteration, every temporary released by hand. */
static void w1_explicit(void *p)
{
    w1_ctx *c = p;
    nb_tensor *xw = nb_matmul(c->x, c->w);
    nb_tensor *z = nb_add(xw, c->b);
    nb_tensor *loss = nb_binary_cross_entropy_with_logits(z, c->y, NULL, NULL, NB_MEAN);
    if (!loss || nb_backward(loss, NULL, false) != NB_OK) w1_fail(c, "W1 (explicit)");
    nb_release(loss);
    nb_release(z);
    nb_release(xw);
    nb_zero_grad(c->w, true);
    nb_zero_grad(c->b, true);
}

/*
 * One iteration by hand, in double: z = x·W + b, dz = (σ(z) − y) / 3, dW = x ⊗ dz, db = dz.
 * Returns the larger normwise error of W.grad and b.grad after a scope iteration that keeps
 * its grads.
 */
static double w1_check(w1_ctx *c)
{
    nb_scope *s = nb_scope_begin();
    nb_tensor *z = nb_add(nb_matmul(c->x, c->w), c->b);
    nb_tensor *loss = nb_binary_cross_entropy_with_logits(z, c->y, NULL, NULL, NB_MEAN);
    bool ok = s && loss && nb_backward(loss, NULL, false) == NB_OK;
    if (s) nb_scope_end(s);
    const nb_tensor *gw = nb_tensor_grad(c->w), *gb = nb_tensor_grad(c->b);
    if (!ok || !gw || !gb) {
        report_nabla_error("W1 check");
        return (double)INFINITY;
    }
    const float *X = nb_tensor_data_const(c->x), *W = nb_tensor_data_const(c->w);
    const float *B = nb_tensor_data_const(c->b), *Y = nb_tensor_data_const(c->y);
    float ref_w[15], ref_b[3];
    for (int j = 0; j < 3; j++) {
        double zj = (double)B[j];
        for (int i = 0; i < 5; i++) zj += (double)X[i] * (double)W[i * 3 + j];
        double dz = (1.0 / (1.0 + exp(-zj)) - (double)Y[j]) / 3.0;
        ref_b[j] = (float)dz;
        for (int i = 0; i < 5; i++) ref_w[i * 3 + j] = (float)((double)X[i] * dz);
    }
    double err = fmax(max_rel_err(nb_tensor_data_const(gw), ref_w, 15),
                      max_rel_err(nb_tensor_data_const(gb), ref_b, 3));
    nb_zero_grad(c->w, true);
    nb_zero_grad(c->b, true);
    return err;
}

static void w1_print_header(const nbb_options *opt)
{
    if (opt->json) return;
    printf("W1: the seed graph (x·W + b, bce_with_logits, backward, release, grads to None)\n");
    printf("%7s  %-9s %-9s %9s %7s %12s %8s %12s\n", "threads", "variant", "allocator", "reps",
           "batch", "ns per iter", "target", "max rel err");
}

static void w1_print_row(const nbb_options *opt, int threads, const char *variant, bool pool,
                         const nbb_timing *t, double err)
{
    double ns = t->median_s * 1e9;
    bool met = ns <= W1_TARGET_NS;
    if (opt->json) {
        NBB_JSON_ROW(stdout, NBB_STR("workload", "W1"), NBB_STR("variant", variant),
                     NBB_STR("allocator", allocator_name(pool)), NBB_INT("threads", threads),
                     NBB_INT("reps", t->reps), NBB_INT("batch", t->batch),
                     NBB_NUM("median_s", t->median_s), NBB_NUM("ns_per_iter", ns),
                     NBB_NUM("target_ns", W1_TARGET_NS), NBB_BOOL("meets_target", met),
                     NBB_NUM("max_rel_err", err));
        return;
    }
    printf("%7d  %-9s %-9s %9d %7d %12.1f %8s %12.2e\n", threads, variant, allocator_name(pool),
           t->reps, t->batch, ns, met ? "met" : "MISSED", err);
}

static bool run_w1(const nbb_options *opt, int threads, bool pool)
{
    use_allocator(pool);
    nb_manual_seed(0);
    w1_ctx c = {.x = nb_ones(NB_SHAPE(5)),
                .w = nb_requires_grad_(nb_randn(NB_SHAPE(5, 3)), true),
                .b = nb_requires_grad_(nb_randn(NB_SHAPE(3)), true),
                .y = nb_ones(NB_SHAPE(3))};
    bool ok = c.x && c.w && c.b && c.y;
    if (!ok) report_nabla_error("W1 setup");
    double err = ok ? w1_check(&c) : (double)INFINITY;
    if (ok && !(err <= TOLERANCE)) {
        fprintf(stderr, "bench-autograd: W1 grads differ from the direct computation: %.3g\n", err);
        ok = false;
    }
    if (ok) {
        nbb_timing ts = nbb_measure(w1_scope, &c, opt);
        nbb_timing te = nbb_measure(w1_explicit, &c, opt);
        ok = !c.failed;
        w1_print_row(opt, threads, "scope", pool, &ts, err);
        w1_print_row(opt, threads, "explicit", pool, &te, err);
    }
    nb_release(c.x);
    nb_release(c.w);
    nb_release(c.b);
    nb_release(c.y);
    use_allocator(false);
    fflush(stdout);
    return ok;
}

/* ---- W2: sum(A·B) and its backward ---------------------------------------------------------- */

typedef struct w2_ctx {
    int n, threads;         /* raw3 runs OpenBLAS at this many threads */
    nb_tensor *a, *b;       /* leaves requiring grad */
    float *c, *g, *da, *db; /* the raw baseline's buffers; g is all ones */
    bool failed;
} w2_ctx;

static void w2_autograd(void *p)
{
    w2_ctx *c = p;
    nb_scope *s = nb_scope_begin();
    nb_tensor *loss = nb_sum(nb_matmul(c->a, c->b), NB_DIMS_ALL, false);
    if (!loss || nb_backward(loss, NULL, false) != NB_OK) {
        if (!c->failed) report_nabla_error("W2");
        c->failed = true;
    }
    if (s) nb_scope_end(s);
    nb_zero_grad(c->a, true);
    nb_zero_grad(c->b, true);
}

/* The three GEMMs of one W2 iteration, with the transpose flags nabla's backward uses. */
static void w2_raw3(void *p)
{
    const w2_ctx *c = p;
    int n = c->n, saved = nbb_blas_threads(c->threads);
    const float *A = nb_tensor_data_const(c->a), *B = nb_tensor_data_const(c->b);
    /* C = A·B */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, A, n, B, n, 0.0f, c->c,
                n);
    /* dA = G·Bᵀ */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, n, n, 1.0f, c->g, n, B, n, 0.0f, c->da,
                n);
    /* dB = Aᵀ·G */
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, n, n, n, 1.0f, A, n, c->g, n, 0.0f, c->db,
                n);
    nbb_blas_threads(saved);
}

/* One autograd iteration that keeps its grads, against the raw buffers. */
static double w2_check(w2_ctx *c)
{
    w2_raw3(c);
    nb_scope *s = nb_scope_begin();
    nb_tensor *loss = nb_sum(nb_matmul(c->a, c->b), NB_DIMS_ALL, false);
    bool ok = s && loss && nb_backward(loss, NULL, false) == NB_OK;
    if (s) nb_scope_end(s);
    const nb_tensor *ga = nb_tensor_grad(c->a), *gb = nb_tensor_grad(c->b);
    if (!ok || !ga || !gb) {
        report_nabla_error("W2 check");
        return (double)INFINITY;
    }
    size_t count = (size_t)c->n * (size_t)c->n;
    double err = fmax(max_rel_err(nb_tensor_data_const(ga), c->da, count),
                      max_rel_err(nb_tensor_data_const(gb), c->db, count));
    nb_zero_grad(c->a, true);
    nb_zero_grad(c->b, true);
    return err;
}

/* Medians, over samples of one iteration each, of forward, backward and teardown. */
typedef struct w2_phases {
    double forward_s, backward_s, teardown_s;
} w2_phases;

static w2_phases w2_measure_phases(w2_ctx *c, int reps)
{
    double *f = malloc((size_t)reps * 3 * sizeof *f);
    if (!f) return (w2_phases){(double)NAN, (double)NAN, (double)NAN};
    double *bw = f + reps, *td = f + 2 * reps;
    for (int r = 0; r < reps; r++) {
        double t0 = nbb_now();
        nb_scope *s = nb_scope_begin();
        nb_tensor *loss = nb_sum(nb_matmul(c->a, c->b), NB_DIMS_ALL, false);
        double t1 = nbb_now();
        if (!loss || nb_backward(loss, NULL, false) != NB_OK) c->failed = true;
        double t2 = nbb_now();
        if (s) nb_scope_end(s);
        nb_zero_grad(c->a, true);
        nb_zero_grad(c->b, true);
        double t3 = nbb_now();
        f[r] = t1 - t0;
        bw[r] = t2 - t1;
        td[r] = t3 - t2;
    }
    w2_phases ph = {nbb_median(f, (size_t)reps), nbb_median(bw, (size_t)reps),
                    nbb_median(td, (size_t)reps)};
    free(f);
    return ph;
}

static void w2_print_header(const nbb_options *opt)
{
    if (opt->json) return;
    printf("\nW2: loss = sum(A·B), A, B [n,n] requiring grad; backward; release; grads to None\n"
           "GFLOP/s over 3 GEMMs (6n^3 flops); raw3 = the same 3 cblas_sgemm calls, timed in "
           "alternation with autograd;\nratio = median over pairs of t_raw3 / t_autograd (target "
           ">= %.2f at n = %d). Phases: one autograd iteration\nsplit into forward, backward, "
           "teardown (medians).\n",
           W2_TARGET_RATIO, W2_TARGET_N);
    printf("%7s %5s %-9s %6s %12s %12s %9s %9s %7s %7s  %-26s %10s\n", "threads", "n", "allocator",
           "pairs", "autograd ms", "raw3 ms", "ag GF/s", "raw GF/s", "ratio", "target",
           "fwd / bwd / teardown ms", "max rel err");
}

static void w2_print_row(const nbb_options *opt, int threads, int n, bool pool,
                         const nbb_pair_timing *t, const w2_phases *ph, double err)
{
    double flops = 6.0 * (double)n * (double)n * (double)n;
    /* the target is for n = W2_TARGET_N only; other sizes are for reference */
    bool applies = n == W2_TARGET_N, met = applies && t->ratio >= W2_TARGET_RATIO;
    if (opt->json) {
        NBB_JSON_ROW(stdout, NBB_STR("workload", "W2"), NBB_STR("allocator", allocator_name(pool)),
                     NBB_INT("threads", threads), NBB_INT("n", n), NBB_INT("pairs", t->pairs),
                     NBB_INT("batch", t->batch), NBB_NUM("autograd_median_s", t->b_s),
                     NBB_NUM("raw3_median_s", t->a_s),
                     NBB_NUM("autograd_gflops", flops / t->b_s * 1e-9),
                     NBB_NUM("raw3_gflops", flops / t->a_s * 1e-9), NBB_NUM("ratio", t->ratio),
                     NBB_NUM("target_ratio", W2_TARGET_RATIO), NBB_INT("target_n", W2_TARGET_N),
                     NBB_BOOL("meets_target", met), NBB_NUM("forward_median_s", ph->forward_s),
                     NBB_NUM("backward_median_s", ph->backward_s),
                     NBB_NUM("teardown_median_s", ph->teardown_s), NBB_NUM("max_rel_err", err));
        return;
    }
    char phases[64];
    snprintf(phases, sizeof phases, "%.3f / %.3f / %.3f", ph->forward_s * 1e3, ph->backward_s * 1e3,
             ph->teardown_s * 1e3);
    printf("%7d %5d %-9s %6d %12.3f %12.3f %9.1f %9.1f %7.3f %7s  %-26s %10.2e\n", threads, n,
           allocator_name(pool), t->pairs, t->b_s * 1e3, t->a_s * 1e3, flops / t->b_s * 1e-9,
           flops / t->a_s * 1e-9, t->ratio,
           !applies ? "-"
           : met    ? "met"
                    : "MISSED",
           phases, err);
}

static bool run_w2(const nbb_options *opt, int threads, int n, double time_s, bool pool)
{
    use_allocator(pool);
    size_t count = (size_t)n * (size_t)n;
    w2_ctx c = {.n = n,
                .threads = threads,
                .a = nb_requires_grad_(nb_empty(NB_SHAPE(n, n)), true),
                .b = nb_requires_grad_(nb_empty(NB_SHAPE(n, n)), true),
                .c = malloc(count * sizeof(float)),
                .g = malloc(count * sizeof(float)),
                .da = malloc(count * sizeof(float)),
                .db = malloc(count * sizeof(float))};
    bool ok = c.a && c.b && c.c && c.g && c.da && c.db;
    if (!ok) fprintf(stderr, "bench-autograd: W2 setup failed for n=%d\n", n);
    double err = (double)INFINITY;
    if (ok) {
        uint64_t seed = 42 + (uint64_t)n;
        nbb_fill_uniform(nb_tensor_data(c.a), count, &seed);
        nbb_fill_uniform(nb_tensor_data(c.b), count, &seed);
        nb_tensor_bump_version(c.a);
        nb_tensor_bump_version(c.b);
        for (size_t i = 0; i < count; i++) c.g[i] = 1.0f;
        err = w2_check(&c);
        if (!(err <= TOLERANCE)) {
            fprintf(stderr, "bench-autograd: W2 grads differ from raw sgemm at n=%d: %.3g\n", n,
                    err);
            ok = false;
        }
    }
    if (ok) {
        nbb_pair_timing t = nbb_measure_pair(w2_raw3, w2_autograd, &c, time_s, opt->quick ? 3 : 11);
        w2_phases ph = w2_measure_phases(&c, opt->quick ? 3 : 11);
        ok = !c.failed && t.pairs > 0;
        w2_print_row(opt, threads, n, pool, &t, &ph, err);
    }
    nb_release(c.a);
    nb_release(c.b);
    use_allocator(false);
    free(c.c);
    free(c.g);
    free(c.da);
    free(c.db);
    fflush(stdout);
    return ok;
}

/* ---- main ---------------------------------------------------------------------------------- */

static void usage(void)
{
    printf("usage: bench-autograd [options]\n"
           "  --sizes LIST       W2 matrix sizes n (default 128,512,1024; quick 32,64)\n"
           "  --w2-time SECONDS  W2 time per size and thread count (default 3; quick 0.05)\n"
           "  --workloads LIST   1 for W1, 2 for W2 (default 1,2)\n"
           "  --pool             also measure with a caching allocator (nb_set_allocator)\n");
    nbb_print_usage(stdout);
}

int main(int argc, char **argv)
{
    nbb_quiet_blas_threads(argv);
    nbb_options opt;
    int rc = nbb_start(&argc, argv, &opt, usage);
    if (rc >= 0) return rc;

    int sizes[MAX_SIZES] = {128, 512, 1024};
    int n_sizes = 3;
    if (opt.quick) {
        sizes[0] = 32;
        sizes[1] = 64;
        n_sizes = 2;
    }
    double w2_time = opt.quick ? 0.05 : 3.0;
    int workloads[2] = {1, 2};
    int n_workloads = 2;
    bool with_pool = false;
    for (int i = 1; i < argc; i++) {
        bool missing = false;
        const char *v;
        if ((v = nbb_flag_value(argc, argv, &i, "--sizes", &missing))) {
            n_sizes = nbb_parse_int_list("--sizes", v, 1, 8192, sizes, MAX_SIZES);
            if (n_sizes < 0) return 2;
        } else if ((v = nbb_flag_value(argc, argv, &i, "--w2-time", &missing))) {
            char *end;
            w2_time = strtod(v, &end);
            if (*end != '\0' || !(w2_time >= 0.0)) {
                fprintf(stderr, "--w2-time: expected a number of seconds, got '%s'\n", v);
                return 2;
            }
        } else if ((v = nbb_flag_value(argc, argv, &i, "--workloads", &missing))) {
            n_workloads = nbb_parse_int_list("--workloads", v, 1, 2, workloads, 2);
            if (n_workloads < 0) return 2;
        } else if (strcmp(argv[i], "--pool") == 0) {
            with_pool = true;
        } else {
            if (!missing)
                fprintf(stderr, "bench-autograd: unknown option '%s' (try --help)\n", argv[i]);
            return 2;
        }
    }
    bool do_w1 = false, do_w2 = false;
    for (int i = 0; i < n_workloads; i++) {
        do_w1 = do_w1 || workloads[i] == 1;
        do_w2 = do_w2 || workloads[i] == 2;
    }

    bool ok = true;
    for (int w = 1; w <= 2; w++) {
        if (w == 1 ? !do_w1 : !do_w2) continue;
        if (w == 1)
            w1_print_header(&opt);
        else
            w2_print_header(&opt);
        for (size_t t = 0; t < opt.n_threads; t++) {
            if (nb_set_num_threads(opt.threads[t]) != NB_OK) {
                report_nabla_error("nb_set_num_threads");
                return 1;
            }
            for (int p = 0; p <= (with_pool ? 1 : 0); p++) {
                if (w == 1) {
                    if (!run_w1(&opt, opt.threads[t], p == 1)) ok = false;
                    continue;
                }
                for (int i = 0; i < n_sizes; i++)
                    if (!run_w2(&opt, opt.threads[t], sizes[i], w2_time, p == 1)) ok = false;
            }
        }
    }
    if (with_pool && !opt.json)
        printf("\n--pool: %zu blocks taken from malloc by the caching allocator in all\n",
               pool_mallocs);
    return ok ? 0 : 1;
}
