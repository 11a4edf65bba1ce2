/*
 * Helpers shared by nabla's benchmark programs (bench-matmul, bench-autograd).
 *
 * A benchmark parses the shared flags, times a callback, and prints one row per result:
 *
 *     nbb_options opt;
 *     if (nbb_parse_options(&argc, argv, &opt) != 0) return 2;   // leaves its own flags
 *     nbb_timing t = nbb_measure(run_once, &ctx, &opt);          // warm-up, then median
 *     NBB_JSON_ROW(stdout, NBB_STR("workload", "M"), NBB_INT("n", n),
 *                  NBB_NUM("median_s", t.median_s));
 *
 * Timings are medians of repeated samples after a warm-up; machines are noisy, so report
 * ratios measured in the same run (see docs/benchmarks.md).
 */
#ifndef NABLA_BENCH_UTIL_H
#define NABLA_BENCH_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Seconds on a monotonic clock, from an arbitrary origin. */
double nbb_now(void);

/* The median of v[0..n-1] (the mean of the middle two when n is even); sorts v. n >= 1. */
double nbb_median(double *v, size_t n);

#define NBB_MAX_THREADS 16

/* The flags every benchmark takes. */
typedef struct nbb_options {
    bool json;                    /* --json: one JSON object per row instead of a table */
    bool quick;                   /* --quick: small sizes, few reps (a smoke test) */
    int threads[NBB_MAX_THREADS]; /* --threads 1,2: thread counts to run, in order */
    size_t n_threads;             /* entries used in threads (default: 1, 2) */
    double min_time_s;            /* time one measurement spends at least (0.2 s; quick 0.02) */
    int min_reps;                 /* samples per measurement at least (3) */
} nbb_options;

/*
 * Parse --json, --quick, --threads LIST (also --threads=LIST) and --help out of argv.
 * The arguments it does not know stay, in order, in argv[1..*argc-1] for the benchmark's
 * own parser. Returns 0; 1 for --help (print the usage, with nbb_print_usage for the shared
 * flags, and exit); -1 after printing a one-line message to stderr.
 */
int nbb_parse_options(int *argc, char **argv, nbb_options *opt);

/*
 * A benchmark's start: parse the shared flags into opt (nbb_parse_options). Returns -1 to go
 * on; otherwise main returns the value: 0 after --help (usage() printed), 2 for a bad flag.
 */
int nbb_start(int *argc, char **argv, nbb_options *opt, void (*usage)(void));

/* The shared flags' usage, one per line, for a benchmark's --help. */
void nbb_print_usage(FILE *out);
/* The same, without the --threads line when threads is false (a benchmark that describes
 * --threads itself, as bench-dist does). */
void nbb_print_usage_threads(FILE *out, bool threads);

/*
 * Parse a comma-separated list of integers in [lo, hi] ("64,128,256") into out[0..cap-1].
 * Returns the count, or -1 after printing a message naming flag to stderr.
 */
int nbb_parse_int_list(const char *flag, const char *text, int lo, int hi, int *out, size_t cap);

/* name is one of the names in the comma-separated list (a NULL list: every name) */
bool nbb_listed(const char *list, const char *name);

/*
 * If argv[*i] is flag, as "flag VALUE" or "flag=VALUE", return VALUE and advance *i past it;
 * otherwise NULL. A flag with no value prints a message and sets *missing.
 */
const char *nbb_flag_value(int argc, char **argv, int *i, const char *flag, bool *missing);

/* One measurement: the median time per call over `reps` samples of `batch` calls each. */
typedef struct nbb_timing {
    double median_s; /* per call */
    int reps;        /* samples taken */
    int batch;       /* calls per sample */
} nbb_timing;

/*
 * Time fn(ctx): warm up, then take samples until opt->min_time_s has passed and at least
 * opt->min_reps samples are in. Calls much shorter than a clock read are batched so that
 * one sample lasts at least 50 µs.
 */
nbb_timing nbb_measure(void (*fn)(void *ctx), void *ctx, const nbb_options *opt);

/* Medians of two functions timed in alternation, and of the ratio within each pair. */
typedef struct nbb_pair_timing {
    double a_s, b_s;           /* per call */
    double ratio;              /* median over pairs of t_a / t_b */
    double ratio_q1, ratio_q3; /* its quartiles */
    /* median over pairs of t_b / t_a, and its quartiles: with an even number of pairs, or
     * between order statistics, not the reciprocals of ratio's */
    double ratio_ba, ratio_ba_q1, ratio_ba_q3;
    int pairs, batch;
} nbb_pair_timing;

/*
 * Warm both up, then take pairs of samples, `batch` calls of fa then `batch` calls of fb,
 * until time_s has passed and at least min_pairs are in. A sample of either function lasts at
 * least 1 ms, so a slow spell of a shared machine hits both sides of a ratio.
 */
nbb_pair_timing nbb_measure_pair(void (*fa)(void *), void (*fb)(void *), void *ctx, double time_s,
                                 int min_pairs);

/* The q-quantile (0..1) of v[0..n-1], interpolated between order statistics; sorts v. */
double nbb_quantile(double *v, size_t n, double q);

/*
 * Set the thread count of OpenBLAS for the benchmark's own raw cblas calls and return the
 * previous one (1 where the BLAS has no such setting). nabla keeps OpenBLAS at one thread
 * and runs its products on its own pool, so a raw baseline at t threads sets t around its
 * calls and puts the previous count back before nabla computes again.
 */
int nbb_blas_threads(int n);

/*
 * OpenBLAS's idle threads spin for 2^28 cycles (≈ 70 ms) after each threaded call, competing
 * with nabla's pool for the cores when the two are timed in alternation. Unless the
 * environment sets OPENBLAS_THREAD_TIMEOUT, re-run this program with it at 4 (they sleep at
 * once; the raw baseline's time is the same within noise). Returns only if no re-run.
 */
void nbb_quiet_blas_threads(char **argv);

/* Fill x[0..n-1] with uniform floats in [-1, 1) from a xorshift64* state (never 0). */
void nbb_fill_uniform(float *x, size_t n, uint64_t *state);

/* A field of a JSON row; build with NBB_STR, NBB_INT, NBB_NUM, NBB_BOOL, NBB_NULL. */
typedef enum nbb_kind {
    NBB_KIND_STR,
    NBB_KIND_INT,
    NBB_KIND_NUM,
    NBB_KIND_BOOL,
    NBB_KIND_NULL
} nbb_kind;
typedef struct nbb_field {
    const char *key;
    nbb_kind kind;
    const char *s;
    long long i;
    double d;
} nbb_field;

#define NBB_STR(k, v)  ((nbb_field){.key = (k), .kind = NBB_KIND_STR, .s = (v)})
#define NBB_INT(k, v)  ((nbb_field){.key = (k), .kind = NBB_KIND_INT, .i = (long long)(v)})
#define NBB_NUM(k, v)  ((nbb_field){.key = (k), .kind = NBB_KIND_NUM, .d = (double)(v)})
#define NBB_BOOL(k, v) ((nbb_field){.key = (k), .kind = NBB_KIND_BOOL, .i = (v) ? 1 : 0})
#define NBB_NULL(k)    ((nbb_field){.key = (k), .kind = NBB_KIND_NULL})

/*
 * Write the fields as one JSON object on one line. A non-finite NBB_NUM is written as null.
 * Numbers keep 6 significant digits.
 */
void nbb_json_row(FILE *out, const nbb_field *fields, size_t n);

#define NBB_JSON_ROW(out, ...)                                                                     \
    nbb_json_row((out), (const nbb_field[]){__VA_ARGS__},                                          \
                 sizeof((const nbb_field[]){__VA_ARGS__}) / sizeof(nbb_field))

#endif /* NABLA_BENCH_UTIL_H */
