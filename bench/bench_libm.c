/*
 * nabla's float functions with glibc's bits (src/ops/mathf.h: e^x, tanh, erf, ln, ln(1 + x),
 * e^x - 1, log2, sin, cos, x^y) against the C library's expf, tanhf, erff, logf, log1pf, expm1f,
 * log2f, sinf, cosf and powf: the bits of every float compared (--all: all 2^32; by default one
 * in 257; --quick one in 65 537), and ns per element of each over the floats compared and over
 * 2^20 values spread evenly over [-6, 6] (where activations live; far out, libm returns early and
 * nabla's loops compute every path). pow takes each float as x with six exponents drawn for it
 * (from a list of special ones, from all floats, from [-8, 8], from the integers in [-64, 64],
 * from [-200, 200], and one that puts x^y between 2^-152 and 2^130), and is timed over x in
 * (0, 6] and y in [-3, 3]. Exits 1 when any bits differ. Built with the library's floating-point
 * flags and its CPU-specific copies, so it checks the copy this CPU runs.
 * bench-libm [--all | --quick] [--fns exp,tanh,...,pow]
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"
#include "ops/mathf.h"

enum { CHUNK = 1 << 20 };

/* NAME_run(x, y, n): y[i] = EXPR(x[i]), in the CPU-specific copies the library's loops have */
#define RUN(name, EXPR)                                                                            \
    NB__CLONES static void name##_run(const float *restrict x, float *restrict y, int64_t n)       \
    {                                                                                              \
        for (int64_t i = 0; i < n; i++) y[i] = EXPR(x[i]);                                         \
    }
RUN(exp, nb__expf)
RUN(tanh, nb__tanhf)
RUN(erf, nb__erff)
RUN(log, nb__logf)
RUN(log1p, nb__log1pf)
RUN(expm1, nb__expm1f)
RUN(log2, nb__log2f)

/* sin or cos as nb_sin and nb_cos run them: blocks whose |x| are all below 120 without the
 * large reduction */
static inline __attribute__((always_inline)) void
trig_run(const float *restrict x, float *restrict y, int64_t n, bool cosine)
{
    for (int64_t lo = 0; lo < n; lo += NB__TRIG_BLOCK) {
        int64_t hi = n - lo < NB__TRIG_BLOCK ? n : lo + NB__TRIG_BLOCK;
        if (nb__trig_small(x + lo, 1, hi - lo))
            for (int64_t i = lo; i < hi; i++) y[i] = nb__sincosf(x[i], cosine, false);
        else
            for (int64_t i = lo; i < hi; i++) y[i] = nb__sincosf(x[i], cosine, true);
    }
}

NB__CLONES static void sin_run(const float *restrict x, float *restrict y, int64_t n)
{
    trig_run(x, y, n, false);
}

NB__CLONES static void cos_run(const float *restrict x, float *restrict y, int64_t n)
{
    trig_run(x, y, n, true);
}

NB__CLONES static void pow_run(const float *restrict x, const float *restrict y, float *restrict o,
                               int64_t n)
{
    for (int64_t i = 0; i < n; i++) o[i] = nb__powf(x[i], y[i]);
}

/* A well-mixed 64-bit hash of u (splitmix64's finaliser) */
static uint64_t mix(uint64_t u)
{
    u += 0x9e3779b97f4a7c15ull;
    u = (u ^ (u >> 30)) * 0xbf58476d1ce4e5b9ull;
    u = (u ^ (u >> 27)) * 0x94d049bb133111ebull;
    return u ^ (u >> 31);
}

/* The exponent of draw `round` (0..5) for the base x; h a hash */
static float pow_exponent(int round, float x, uint64_t h)
{
    static const float special[] = {0.0f,          -0.0f,         1.0f,
                                    -1.0f,         2.0f,          -2.0f,
                                    3.0f,          -3.0f,         0.5f,
                                    -0.5f,         1.0f / 3.0f,   2.5f,
                                    -2.5f,         10.0f,         -10.0f,
                                    127.0f,        -149.0f,       1e-3f,
                                    1e10f,         -1e10f,        INFINITY,
                                    -INFINITY,     NAN,           -NAN,
                                    0x1p-149f,     -0x1p-149f,    0x1.fffffep127f,
                                    25.0f,         16777215.0f,   16777216.0f,
                                    8388609.0f,    0x1.8p23f,     0x1.fffffep22f,
                                    0x1p-126f,     0x1p24f,       -0x1p24f,
                                    0x1.000002p0f, 0x1.fffffep-1f};
    double u = (double)(h >> 11) * 0x1p-53; /* in [0, 1) */
    uint32_t bits = (uint32_t)h;
    float y;
    switch (round) {
    case 0:
        return special[h % (sizeof special / sizeof special[0])];
    case 1:
        memcpy(&y, &bits, sizeof y);
        return y;
    case 2:
        return (float)(-8.0 + 16.0 * u);
    case 3:
        return (float)((int64_t)(h % 129) - 64);
    case 4:
        return (float)(-200.0 + 400.0 * u);
    default: { /* |x|^y in [2^-152, 2^130] */
        double l = log2(fabs((double)x));
        return l != 0.0 && isfinite(l) ? (float)((-152.0 + 282.0 * u) / l) : (float)u;
    }
    }
}

/* One row of the table: differ, ns per element over the floats compared (count of them, in
 * t_nb and t_libm seconds) and over [-6, 6] (r_nb and r_libm seconds for CHUNK) */
static void print_row(const char *name, uint64_t differ, uint64_t count, double t_nb, double t_libm,
                      double r_nb, double r_libm)
{
    printf("%-6s %14llu %10.3f %10.3f %8.2f %14.3f %10.3f %8.2f\n", name,
           (unsigned long long)differ, t_nb / (double)count * 1e9, t_libm / (double)count * 1e9,
           t_libm / t_nb, r_nb / CHUNK * 1e9, r_libm / CHUNK * 1e9, r_libm / r_nb);
}

/* x[0..n) = the floats of bits *u, *u + stride, ... below 2^32, n at most CHUNK; *u moves on */
static int64_t next_floats(float *x, uint64_t *u, uint64_t stride)
{
    int64_t n = 0;
    for (; n < CHUNK && *u <= 0xffffffffull; n++, *u += stride) {
        uint32_t bits = (uint32_t)*u;
        memcpy(&x[n], &bits, sizeof bits);
    }
    return n;
}

/* nb__powf against powf: the bits over every stride-th float as x, each with six exponents;
 * then the times over x in (0, 6] and y in [-3, 3]. Returns 1 when any bits differ. */
static int pow_check(uint64_t stride, float *x, float *a, float *b, float *y)
{
    uint64_t differ = 0, count = 0, u = 0;
    double t_nb = 0, t_libm = 0;
    while (u <= 0xffffffffull) {
        uint64_t first = u;
        int64_t n = next_floats(x, &u, stride);
        for (int round = 0; round < 6; round++) {
            for (int64_t i = 0; i < n; i++)
                y[i] = pow_exponent(round, x[i], mix((first + (uint64_t)i) * 6 + (uint64_t)round));
            double t0 = nbb_now();
            pow_run(x, y, a, n);
            double t1 = nbb_now();
            for (int64_t i = 0; i < n; i++) b[i] = powf(x[i], y[i]);
            t_libm += nbb_now() - t1;
            t_nb += t1 - t0;
            for (int64_t i = 0; i < n; i++)
                if (memcmp(&a[i], &b[i], sizeof a[i])) {
                    if (differ < 5)
                        printf("pow(%a, %a): nabla %a, libm %a\n", (double)x[i], (double)y[i],
                               (double)a[i], (double)b[i]);
                    differ++;
                }
            count += (uint64_t)n;
        }
    }
    for (int64_t i = 0; i < CHUNK; i++) {
        uint64_t h = mix((uint64_t)i);
        x[i] = 6.0f * (float)(i + 1) / (float)CHUNK;
        y[i] = (float)(-3.0 + 6.0 * (double)(h >> 11) * 0x1p-53);
    }
    double r_nb = 1e30, r_libm = 1e30;
    for (int rep = 0; rep < 5; rep++) {
        double t0 = nbb_now();
        pow_run(x, y, a, CHUNK);
        double t1 = nbb_now();
        for (int64_t i = 0; i < CHUNK; i++) b[i] = powf(x[i], y[i]);
        double t2 = nbb_now();
        r_nb = t1 - t0 < r_nb ? t1 - t0 : r_nb;
        r_libm = t2 - t1 < r_libm ? t2 - t1 : r_libm;
        differ += (uint64_t)(memcmp(a, b, CHUNK * sizeof(float)) != 0);
    }
    print_row("pow", differ, count, t_nb, t_libm, r_nb, r_libm);
    return differ != 0;
}

static void libm_run(float (*f)(float), const float *x, float *y, int64_t n)
{
    for (int64_t i = 0; i < n; i++) y[i] = f(x[i]);
}

typedef struct fn {
    const char *name;
    void (*nb)(const float *restrict, float *restrict, int64_t);
    float (*libm)(float);
} fn;

int main(int argc, char **argv)
{
    uint64_t stride = 257;
    const char *only = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--all"))
            stride = 1;
        else if (!strcmp(argv[i], "--quick"))
            stride = 65537;
        else if (!strcmp(argv[i], "--fns") && i + 1 < argc)
            only = argv[++i];
        else {
            fprintf(stderr, "usage: bench-libm [--all | --quick] [--fns LIST]\n");
            return 2;
        }
    }
    const fn fns[] = {
        {"exp", exp_run, expf},    {"tanh", tanh_run, tanhf},    {"erf", erf_run, erff},
        {"log", log_run, logf},    {"log1p", log1p_run, log1pf}, {"expm1", expm1_run, expm1f},
        {"log2", log2_run, log2f}, {"sin", sin_run, sinf},       {"cos", cos_run, cosf}};
    float *x = malloc(CHUNK * sizeof(float)), *a = malloc(CHUNK * sizeof(float)),
          *b = malloc(CHUNK * sizeof(float)), *y = malloc(CHUNK * sizeof(float));
    if (!x || !a || !b || !y) return 2;
    int rc = 0;
    printf("bench-libm: every %llu-th float of 2^32, nabla's against the C library's\n",
           (unsigned long long)stride);
#ifdef NB__MATHF_LIBM
    printf("(this build has one baseline copy, whose functions call the C library's)\n");
#endif
    printf("%-6s %14s %10s %10s %8s %14s %10s %8s\n", "fn", "differ", "nabla ns", "libm ns",
           "ratio", "[-6,6] nabla", "libm", "ratio");
    for (size_t f = 0; f < sizeof fns / sizeof fns[0]; f++) {
        if (!nbb_listed(only, fns[f].name)) continue;
        uint64_t differ = 0, count = 0, u = 0;
        double t_nb = 0, t_libm = 0;
        while (u <= 0xffffffffull) {
            int64_t n = next_floats(x, &u, stride);
            double t0 = nbb_now();
            fns[f].nb(x, a, n);
            double t1 = nbb_now();
            libm_run(fns[f].libm, x, b, n);
            t_libm += nbb_now() - t1;
            t_nb += t1 - t0;
            for (int64_t i = 0; i < n; i++)
                if (memcmp(&a[i], &b[i], sizeof a[i])) {
                    if (differ < 5)
                        printf("%s(%a): nabla %a, libm %a\n", fns[f].name, (double)x[i],
                               (double)a[i], (double)b[i]);
                    differ++;
                }
            count += (uint64_t)n;
        }
        for (int64_t i = 0; i < CHUNK; i++) x[i] = -6.0f + 12.0f * (float)i / (float)CHUNK;
        double r_nb = 1e30, r_libm = 1e30;
        for (int rep = 0; rep < 5; rep++) {
            double t0 = nbb_now();
            fns[f].nb(x, a, CHUNK);
            double t1 = nbb_now();
            libm_run(fns[f].libm, x, b, CHUNK);
            double t2 = nbb_now();
            r_nb = t1 - t0 < r_nb ? t1 - t0 : r_nb;
            r_libm = t2 - t1 < r_libm ? t2 - t1 : r_libm;
            differ += (uint64_t)(memcmp(a, b, CHUNK * sizeof(float)) != 0);
        }
        print_row(fns[f].name, differ, count, t_nb, t_libm, r_nb, r_libm);
        if (differ) rc = 1;
    }
    if (nbb_listed(only, "pow") && pow_check(stride, x, a, b, y)) rc = 1;
    free(x);
    free(y);
    free(a);
    free(b);
    return rc;
}
