/* Helpers shared by nabla's benchmarks: clock, median, flags, timing loop, JSON rows. */
#define _POSIX_C_SOURCE 200809L
#include "bench_util.h"

#include <errno.h>
#include <unistd.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

double nbb_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double nbb_median(double *v, size_t n)
{
    qsort(v, n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

bool nbb_listed(const char *list, const char *name)
{
    if (!list) return true;
    size_t len = strlen(name);
    for (const char *p = list; *p;) {
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        if (n == len && strncmp(p, name, n) == 0) return true;
        p += n + (end ? 1 : 0);
    }
    return false;
}

const char *nbb_flag_value(int argc, char **argv, int *i, const char *flag, bool *missing)
{
    const char *arg = argv[*i];
    size_t len = strlen(flag);
    if (strncmp(arg, flag, len) != 0) return NULL;
    if (arg[len] == '=') return arg + len + 1;
    if (arg[len] != '\0') return NULL;
    if (*i + 1 >= argc) {
        fprintf(stderr, "%s: needs a value\n", flag);
        *missing = true;
        return NULL;
    }
    *i += 1;
    return argv[*i];
}

int nbb_parse_int_list(const char *flag, const char *text, int lo, int hi, int *out, size_t cap)
{
    size_t count = 0;
    const char *p = text;
    for (;;) {
        char *end;
        errno = 0;
        long v = strtol(p, &end, 10);
        if (end == p || errno != 0 || v < lo || v > hi || (*end != ',' && *end != '\0')) {
            fprintf(stderr, "%s: expected integers in [%d, %d] separated by commas, got '%s'\n",
                    flag, lo, hi, text);
            return -1;
        }
        if (count == cap) {
            fprintf(stderr, "%s: at most %zu values\n", flag, cap);
            return -1;
        }
        out[count++] = (int)v;
        if (*end == '\0') return (int)count;
        p = end + 1;
    }
}

#ifdef NB_HAVE_OPENBLAS_GET_CONFIG
char *openblas_get_config(void); /* not every cblas.h declares it */
#endif

/*
 * The BLAS build and the kernels it picked for this CPU, above a table: OpenBLAS's speed
 * depends on them (0.3.21 does not know AMD Zen 5 and runs its AVX2 Haswell kernels there,
 * half the speed of its AVX-512 ones, OPENBLAS_CORETYPE=SkylakeX), so a figure is only
 * comparable with figures measured under the same kernels.
 */
static void print_blas(void)
{
#ifdef NB_HAVE_OPENBLAS_GET_CONFIG
    printf("BLAS: %s\n", openblas_get_config());
#endif
}

int nbb_start(int *argc, char **argv, nbb_options *opt, void (*usage)(void))
{
    int rc = nbb_parse_options(argc, argv, opt);
    if (rc == 1) {
        usage();
        return 0;
    }
    if (rc == 0 && !opt->json) print_blas();
    return rc == 0 ? -1 : 2;
}

void nbb_print_usage_threads(FILE *out, bool threads)
{
    fputs("  --json           one JSON object per row on stdout instead of the table\n", out);
    if (threads)
        fputs("  --threads LIST   thread counts: nabla's (nb_set_num_threads) and the raw BLAS\n"
              "                   baselines' (default 1,2)\n",
              out);
    fputs("  --quick          small sizes and few repetitions: a smoke test\n"
          "  --help           this text\n",
          out);
}

void nbb_print_usage(FILE *out)
{
    nbb_print_usage_threads(out, true);
}

int nbb_parse_options(int *argc, char **argv, nbb_options *opt)
{
    *opt = (nbb_options){.threads = {1, 2}, .n_threads = 2, .min_time_s = 0.2, .min_reps = 3};
    int kept = 1;
    for (int i = 1; i < *argc; i++) {
        bool missing = false;
        const char *threads = nbb_flag_value(*argc, argv, &i, "--threads", &missing);
        if (missing) return -1;
        if (threads) {
            int n = nbb_parse_int_list("--threads", threads, 1, 256, opt->threads, NBB_MAX_THREADS);
            if (n < 0) return -1;
            opt->n_threads = (size_t)n;
        } else if (strcmp(argv[i], "--json") == 0) {
            opt->json = true;
        } else if (strcmp(argv[i], "--quick") == 0) {
            opt->quick = true;
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            return 1;
        } else {
            argv[kept++] = argv[i];
        }
    }
    *argc = kept;
    argv[kept] = NULL;
    if (opt->quick) opt->min_time_s = 0.02;
    return 0;
}

nbb_timing nbb_measure(void (*fn)(void *ctx), void *ctx, const nbb_options *opt)
{
    /* Warm-up: at least one call, and enough calls to fill 10 ms when they are short, which
     * also estimates the time per call. */
    const double warm_s = 0.01, min_sample_s = 50e-6;
    int warm_calls = 0;
    double t0 = nbb_now(), elapsed;
    do {
        fn(ctx);
        warm_calls++;
        elapsed = nbb_now() - t0;
    } while (elapsed < warm_s);
    double per_call = elapsed / warm_calls;

    int batch = 1;
    if (per_call < min_sample_s) batch = (int)ceil(min_sample_s / fmax(per_call, 1e-9));
    double want = ceil(opt->min_time_s / (per_call * batch));
    int reps = want > 1e6 ? 1000000 : (int)want;
    if (reps < opt->min_reps) reps = opt->min_reps;

    double *samples = malloc((size_t)reps * sizeof *samples);
    if (!samples) return (nbb_timing){.median_s = (double)NAN, .reps = 0, .batch = batch};
    for (int r = 0; r < reps; r++) {
        double s = nbb_now();
        for (int b = 0; b < batch; b++) fn(ctx);
        samples[r] = (nbb_now() - s) / batch;
    }
    double median = nbb_median(samples, (size_t)reps);
    free(samples);
    return (nbb_timing){.median_s = median, .reps = reps, .batch = batch};
}

double nbb_quantile(double *v, size_t n, double q)
{
    qsort(v, n, sizeof *v, cmp_double);
    double at = q * (double)(n - 1);
    size_t lo = (size_t)floor(at), hi = lo + 1 < n ? lo + 1 : lo;
    return v[lo] + (at - (double)lo) * (v[hi] - v[lo]);
}

nbb_pair_timing nbb_measure_pair(void (*fa)(void *), void (*fb)(void *), void *ctx, double time_s,
                                 int min_pairs)
{
    const double warm_s = 0.01, min_sample_s = 1e-3;
    int warm_calls = 0;
    double t0 = nbb_now(), elapsed, warm_a = 0.0, warm_b = 0.0;
    do {
        double s = nbb_now();
        fa(ctx);
        double m = nbb_now();
        fb(ctx);
        double e = nbb_now();
        warm_a += m - s;
        warm_b += e - m;
        warm_calls++;
        elapsed = e - t0;
    } while (elapsed < warm_s);
    double per_pair = elapsed / warm_calls; /* one call of each */
    /* the shorter side's samples last min_sample_s too, not only the pair */
    double shorter = fmin(warm_a, warm_b) / warm_calls;
    int batch = shorter < min_sample_s ? (int)ceil(min_sample_s / fmax(shorter, 1e-9)) : 1;
    double want = ceil(time_s / (per_pair * batch));
    int pairs = want > 1e5 ? 100000 : (int)want;
    if (pairs < min_pairs) pairs = min_pairs;

    const double nan = (double)NAN;
    nbb_pair_timing t = {nan, nan, nan, nan, nan, nan, nan, nan, 0, batch};
    double *ta = malloc((size_t)pairs * 4 * sizeof *ta);
    if (!ta) return t;
    double *tb = ta + pairs, *ratio = ta + 2 * pairs, *ratio_ba = ta + 3 * pairs;
    for (int r = 0; r < pairs; r++) {
        double s = nbb_now();
        for (int i = 0; i < batch; i++) fa(ctx);
        double m = nbb_now();
        for (int i = 0; i < batch; i++) fb(ctx);
        double e = nbb_now();
        ta[r] = (m - s) / batch;
        tb[r] = (e - m) / batch;
        ratio[r] = ta[r] / tb[r];
        ratio_ba[r] = tb[r] / ta[r];
    }
    size_t np = (size_t)pairs;
    t.a_s = nbb_median(ta, np);
    t.b_s = nbb_median(tb, np);
    t.ratio_q1 = nbb_quantile(ratio, np, 0.25);
    t.ratio_q3 = nbb_quantile(ratio, np, 0.75);
    t.ratio = nbb_median(ratio, np);
    t.ratio_ba_q1 = nbb_quantile(ratio_ba, np, 0.25);
    t.ratio_ba_q3 = nbb_quantile(ratio_ba, np, 0.75);
    t.ratio_ba = nbb_median(ratio_ba, np);
    t.pairs = pairs;
    free(ta);
    return t;
}

#ifdef NB_HAVE_OPENBLAS_SET_NUM_THREADS
void openblas_set_num_threads(int num_threads); /* not every cblas.h declares them */
int openblas_get_num_threads(void);
#endif

int nbb_blas_threads(int n)
{
#ifdef NB_HAVE_OPENBLAS_SET_NUM_THREADS
    int before = openblas_get_num_threads();
    if (before != n) openblas_set_num_threads(n);
    return before;
#else
    (void)n;
    return 1;
#endif
}

void nbb_quiet_blas_threads(char **argv)
{
    if (getenv("OPENBLAS_THREAD_TIMEOUT")) return;
    if (setenv("OPENBLAS_THREAD_TIMEOUT", "4", 1) != 0) return;
    execv("/proc/self/exe", argv);
}

void nbb_fill_uniform(float *x, size_t n, uint64_t *state)
{
    uint64_t s = *state ? *state : 0x9E3779B97F4A7C15u;
    for (size_t i = 0; i < n; i++) {
        s ^= s >> 12;
        s ^= s << 25;
        s ^= s >> 27;
        /* The top 24 bits of xorshift64* give an exact float in [0, 1). */
        uint32_t bits = (uint32_t)((s * 0x2545F4914F6CDD1Du) >> 40);
        x[i] = (float)bits * 0x1p-23f - 1.0f;
    }
    *state = s;
}

static void write_json_string(FILE *out, const char *s)
{
    fputc('"', out);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(out, "\\%c", *p);
        else if (*p < 0x20)
            fprintf(out, "\\u%04x", *p);
        else
            fputc(*p, out);
    }
    fputc('"', out);
}

void nbb_json_row(FILE *out, const nbb_field *fields, size_t n)
{
    fputc('{', out);
    for (size_t i = 0; i < n; i++) {
        const nbb_field *f = &fields[i];
        if (i) fputs(", ", out);
        write_json_string(out, f->key);
        fputs(": ", out);
        switch (f->kind) {
        case NBB_KIND_STR:
            if (f->s)
                write_json_string(out, f->s);
            else
                fputs("null", out);
            break;
        case NBB_KIND_INT:
            fprintf(out, "%lld", f->i);
            break;
        case NBB_KIND_NUM:
            if (isfinite(f->d))
                fprintf(out, "%.6g", f->d);
            else
                fputs("null", out);
            break;
        case NBB_KIND_BOOL:
            fputs(f->i ? "true" : "false", out);
            break;
        case NBB_KIND_NULL:
            fputs("null", out);
            break;
        }
    }
    fputs("}\n", out);
}
