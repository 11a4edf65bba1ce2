/*
 * nabla's float functions with glibc's bits (src/ops/mathf.h: e^x, tanh, erf, ln, ln(1 + x),
 * e^x - 1, log2, sin, cos) against the C library's expf, tanhf, erff, logf, log1pf, expm1f,
 * log2f, sinf and cosf: the bits of every float compared (--all: all 2^32; by default one in 257;
 * --quick one in 65 537), and ns per element of each over the floats compared and over 2^20 values
 * spread evenly over
 * [-6, 6] (where activations live; far out, libm returns early and nabla's loops compute every
 * path). Exits 1 when any bits differ. Built with the library's floating-point flags and its
 * CPU-specific copies, so it checks the copy this CPU runs.
 * bench-libm [--all | --quick] [--fns exp,tanh,...]
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
          *b = malloc(CHUNK * sizeof(float));
    if (!x || !a || !b) return 2;
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
            int64_t n = 0;
            for (; n < CHUNK && u <= 0xffffffffull; n++, u += stride) {
                uint32_t bits = (uint32_t)u;
                memcpy(&x[n], &bits, sizeof bits);
            }
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
        printf("%-6s %14llu %10.3f %10.3f %8.2f %14.3f %10.3f %8.2f\n", fns[f].name,
               (unsigned long long)differ, t_nb / (double)count * 1e9, t_libm / (double)count * 1e9,
               t_libm / t_nb, r_nb / CHUNK * 1e9, r_libm / CHUNK * 1e9, r_libm / r_nb);
        if (differ) rc = 1;
    }
    free(x);
    free(a);
    free(b);
    return rc;
}
