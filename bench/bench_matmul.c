/*
 * bench-matmul — workload M of docs/benchmarks.md: square C = A·B in float32, three ways.
 *
 *   naive        the textbook i-j-k triple loop (B walked down a column: one cache line per
 *                multiply-add once B outgrows the cache)
 *   ikj_blocked  i-k-j order, blocked over k and j so a panel of B stays in L2 while every row
 *                of A streams past it; the inner loop runs along rows of B and C and vectorises
 *   cblas_sgemm  the BLAS the library links
 *
 * For each thread count and n it prints the median time, GFLOP/s (2n³ flops) and the speedup
 * over naive measured in the same run, and checks that the three products agree.
 *
 *   bench-matmul [--json] [--quick] [--threads 1,2] [--sizes 64,128,...] [--budget SECONDS]
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

#include "bench_util.h"

enum { NAIVE, BLOCKED, BLAS, N_METHODS };
static const char *const method_name[N_METHODS] = {"naive", "ikj_blocked", "cblas_sgemm"};

#define MAX_SIZES 16
/* Normwise: max |C - C_ref| / max |C_ref|. float32 sums of n products stay far below it. */
#define TOLERANCE 1e-4

typedef struct mm_ctx {
    size_t n;
    const float *a, *b;
    float *c;
} mm_ctx;

static void matmul_naive(void *p)
{
    const mm_ctx *m = p;
    size_t n = m->n;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++) {
            float s = 0.0f;
            for (size_t k = 0; k < n; k++) s += m->a[i * n + k] * m->b[k * n + j];
            m->c[i * n + j] = s;
        }
}

/* C[:, j0:j1] += A[:, k0:k1] · B[k0:k1, j0:j1] in i-k-j order. Restrict parameters (not locals)
 * let gcc vectorise the j loop without an aliasing check per row. */
static void ikj_panel(size_t n, const float *restrict a, const float *restrict b, float *restrict c,
                      size_t k0, size_t k1, size_t j0, size_t j1)
{
    for (size_t i = 0; i < n; i++)
        for (size_t k = k0; k < k1; k++) {
            float aik = a[i * n + k];
            for (size_t j = j0; j < j1; j++) c[i * n + j] += aik * b[k * n + j];
        }
}

/* A KB×JB panel of B is 256 KiB: it stays in L2 while every row of A passes over it, and a
 * JB-float piece of a row of C stays in L1. */
enum { KB = 128, JB = 512 };

static void matmul_blocked(void *p)
{
    const mm_ctx *m = p;
    size_t n = m->n;
    memset(m->c, 0, n * n * sizeof *m->c);
    for (size_t kk = 0; kk < n; kk += KB)
        for (size_t jj = 0; jj < n; jj += JB)
            ikj_panel(n, m->a, m->b, m->c, kk, kk + KB < n ? kk + KB : n, jj,
                      jj + JB < n ? jj + JB : n);
}

static void matmul_blas(void *p)
{
    const mm_ctx *m = p;
    int n = (int)m->n;
    /* C = 1·A·B + 0·C */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, m->a, n, m->b, n, 0.0f,
                m->c, n);
}

static void (*const method_fn[N_METHODS])(void *) = {matmul_naive, matmul_blocked, matmul_blas};

static double max_rel_err(const float *got, const float *ref, size_t count)
{
    double diff = 0.0, scale = 0.0;
    for (size_t i = 0; i < count; i++) {
        diff = fmax(diff, fabs((double)got[i] - (double)ref[i]));
        scale = fmax(scale, fabs((double)ref[i]));
    }
    return scale > 0.0 ? diff / scale : diff;
}

/* One method at one n and thread count: measured, or skipped with the estimate that ruled it
 * out. */
typedef struct result {
    bool ran;
    double est_s;
    nbb_timing t;
    double err;      /* NAN for the reference and for unchecked methods */
    const char *ref; /* the method err is measured against, or NULL */
} result;

static void print_header(const nbb_options *opt, double budget_s)
{
    if (opt->json) return;
    printf("bench-matmul: C = A*B, float32, n x n; GFLOP/s = 2n^3 / median time\n"
           "naive and ikj_blocked are skipped when one call would take over %.1f s;\n"
           "max rel err = max|C - C_ref| / max|C_ref| against naive (ikj_blocked once naive is "
           "skipped)\n\n",
           budget_s);
    printf("%7s %5s  %-12s %7s %12s %9s %9s %12s\n", "threads", "n", "method", "reps", "median ms",
           "GFLOP/s", "vs naive", "max rel err");
}

static void print_row(const nbb_options *opt, int threads, size_t n, int method, const result *r,
                      double naive_s)
{
    double flops = 2.0 * (double)n * (double)n * (double)n;
    double gflops = r->ran ? flops / r->t.median_s * 1e-9 : (double)NAN;
    double speedup = r->ran && naive_s > 0.0 ? naive_s / r->t.median_s : (double)NAN;
    if (opt->json) {
        NBB_JSON_ROW(
            stdout, NBB_STR("workload", "M"), NBB_STR("method", method_name[method]),
            NBB_INT("threads", threads), NBB_INT("n", n), NBB_BOOL("skipped", !r->ran),
            NBB_INT("reps", r->ran ? r->t.reps : 0), NBB_INT("batch", r->ran ? r->t.batch : 0),
            NBB_NUM("median_s", r->ran ? r->t.median_s : (double)NAN), NBB_NUM("gflops", gflops),
            NBB_NUM("speedup_vs_naive", speedup), NBB_NUM("max_rel_err", r->err),
            NBB_STR("checked_against", r->ref), NBB_NUM("est_s", r->est_s));
        return;
    }
    printf("%7d %5zu  %-12s ", threads, n, method_name[method]);
    if (!r->ran) {
        printf("skipped (one call estimated at %.1f s)\n", r->est_s);
        return;
    }
    printf("%7d %12.4f %9.2f ", r->t.reps, r->t.median_s * 1e3, gflops);
    if (isnan(speedup))
        printf("%9s ", "-");
    else
        printf("%8.1fx ", speedup);
    if (isnan(r->err))
        printf("%12s\n", "-");
    else
        printf("%12.2e\n", r->err);
}

/* Measure every method at one n; returns false when the products disagree. */
static bool run_size(const nbb_options *opt, int threads, size_t n, double budget_s,
                     float *const c[N_METHODS], const float *a, const float *b,
                     double last_s[N_METHODS], size_t last_n[N_METHODS])
{
    result r[N_METHODS];
    for (int m = 0; m < N_METHODS; m++) {
        r[m] = (result){.est_s = (double)NAN, .err = (double)NAN};
        /* Scale the last measured n by n³ to predict this one. */
        if (last_n[m]) {
            double ratio = (double)n / (double)last_n[m];
            r[m].est_s = last_s[m] * ratio * ratio * ratio;
        }
        if (m != BLAS && r[m].est_s > budget_s) continue;
        mm_ctx ctx = {.n = n, .a = a, .b = b, .c = c[m]};
        r[m].t = nbb_measure(method_fn[m], &ctx, opt);
        r[m].ran = r[m].t.reps > 0;
        if (r[m].ran) {
            last_s[m] = r[m].t.median_s;
            last_n[m] = n;
        }
    }

    int ref = r[NAIVE].ran ? NAIVE : r[BLOCKED].ran ? BLOCKED : -1;
    bool ok = true;
    for (int m = 0; m < N_METHODS && ref >= 0; m++) {
        if (m == ref || !r[m].ran) continue;
        r[m].err = max_rel_err(c[m], c[ref], n * n);
        r[m].ref = method_name[ref];
        if (!(r[m].err <= TOLERANCE)) {
            fprintf(stderr, "bench-matmul: %s differs from %s at n=%zu, threads=%d: %.3g > %.0e\n",
                    method_name[m], method_name[ref], n, threads, r[m].err, TOLERANCE);
            ok = false;
        }
    }
    double naive_s = r[NAIVE].ran ? r[NAIVE].t.median_s : 0.0;
    for (int m = 0; m < N_METHODS; m++) print_row(opt, threads, n, m, &r[m], naive_s);
    fflush(stdout);
    return ok;
}

static void usage(void)
{
    printf("usage: bench-matmul [options]\n"
           "  --sizes LIST     matrix sizes n (default 64,128,256,512,1024,2048; quick 64,128)\n"
           "  --budget SECONDS skip naive/ikj_blocked when one call would exceed it (default "
           "10)\n");
    nbb_print_usage(stdout);
}

int main(int argc, char **argv)
{
    nbb_options opt;
    int rc = nbb_start(&argc, argv, &opt, usage);
    if (rc >= 0) return rc;

    int sizes[MAX_SIZES] = {64, 128, 256, 512, 1024, 2048};
    int n_sizes = opt.quick ? 2 : 6;
    double budget_s = 10.0;
    for (int i = 1; i < argc; i++) {
        bool missing = false;
        const char *v;
        if ((v = nbb_flag_value(argc, argv, &i, "--sizes", &missing))) {
            n_sizes = nbb_parse_int_list("--sizes", v, 1, 8192, sizes, MAX_SIZES);
            if (n_sizes < 0) return 2;
        } else if ((v = nbb_flag_value(argc, argv, &i, "--budget", &missing))) {
            char *end;
            budget_s = strtod(v, &end);
            if (*end != '\0' || !(budget_s > 0.0)) {
                fprintf(stderr, "--budget: expected a positive number of seconds, got '%s'\n", v);
                return 2;
            }
        } else {
            if (!missing)
                fprintf(stderr, "bench-matmul: unknown option '%s' (try --help)\n", argv[i]);
            return 2;
        }
    }

    size_t max_n = 0;
    for (int i = 0; i < n_sizes; i++)
        if ((size_t)sizes[i] > max_n) max_n = (size_t)sizes[i];
    float *a = malloc(max_n * max_n * sizeof *a), *b = malloc(max_n * max_n * sizeof *b);
    float *c[N_METHODS];
    bool alloc_ok = a && b;
    for (int m = 0; m < N_METHODS; m++) {
        c[m] = malloc(max_n * max_n * sizeof *c[m]);
        alloc_ok = alloc_ok && c[m];
    }

    bool ok = alloc_ok;
    if (!alloc_ok) fprintf(stderr, "bench-matmul: out of memory for n=%zu\n", max_n);
    if (ok) print_header(&opt, budget_s);
    for (size_t t = 0; ok && t < opt.n_threads; t++) {
        /* raw cblas_sgemm: OpenBLAS's own threads (nabla's pool is not involved) */
        nbb_blas_threads(opt.threads[t]);
        double last_s[N_METHODS] = {0};
        size_t last_n[N_METHODS] = {0};
        for (int i = 0; i < n_sizes; i++) {
            size_t n = (size_t)sizes[i];
            uint64_t seed = 42 + n;
            nbb_fill_uniform(a, n * n, &seed);
            nbb_fill_uniform(b, n * n, &seed);
            if (!run_size(&opt, opt.threads[t], n, budget_s, c, a, b, last_s, last_n)) ok = false;
        }
    }

    free(a);
    free(b);
    for (int m = 0; m < N_METHODS; m++) free(c[m]);
    return ok ? 0 : 1;
}
