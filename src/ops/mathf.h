/*
 * Float functions with the bits of glibc's (2.36), written so that the loops that call them
 * vectorise: every lane computes every path of libm's code on its own bits, and selects
 * (nb__pick) take each lane's result, where libm branches. Each one-argument function gives
 * glibc's bits for every one of the 2^32 floats, in the baseline, AVX2 and AVX-512 copies
 * (checked against the libm of Debian 12, whose expf, logf, log2f, sinf, cosf and powf are its
 * FMA builds on CPUs with FMA), and the same bits on any CPU; nb__powf on every float as x with
 * six exponents for each (bench-libm). Call them from code with CPU-specific copies
 * (NB__CLONES, or inlined into it): in the baseline copy fma() is a call and the loops stay
 * scalar, several times slower than libm (the copy only CPUs without AVX2 run).
 */
#ifndef NABLA_OPS_MATHF_H
#define NABLA_OPS_MATHF_H

#include <math.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/internal.h"

/*
 * A build with one baseline copy of the loops (clang, NB_NO_CLONES; not one for a target with
 * AVX2) calls the C library instead: these loops do not vectorise in SSE2 (they need variable
 * shifts, and fma() is a call there), and computing every path in scalar code takes 3 to 15
 * times libm's time. On CPUs with FMA, libm gives these very bits.
 */
#if !defined(NB__HAVE_CLONES) && !defined(__AVX2__)
#define NB__MATHF_LIBM 1
#endif

/* a where c, else b, by the bits (a ternary on floats can stay a branch) */
static inline float nb__pick(bool c, float a, float b)
{
    uint32_t m = 0u - (uint32_t)c;
    return nb__from_bits((nb__bits(a) & m) | (nb__bits(b) & ~m));
}

/*
 * x / c rounded to float, for a float c whose inverse in double is inv (1.0 / (double)c): the
 * product x·inv in double, rounded to float. Where the quotient is zero, infinite, NaN or a
 * normal float (|x / c| >= 2^-126), that is the division's bits: the double product is within
 * 2^-52 of x/c (relative), while a quotient is at least 2^-49 from every midpoint M of two
 * normal floats it is not equal to (x − M·c is a multiple of the last bit of M·c), and it
 * equals none (an odd 25-bit significand times c's has more bits than x's), so both round to
 * the same float. A subnormal quotient can be a midpoint, so a caller must rule those out. A
 * division by a loop constant so becomes a multiplication and two conversions, and leaves
 * the divider (one vector division per 8-10 cycles) to the divisions that remain.
 */
static inline float nb__div_by_inverse(float x, double inv)
{
    return (float)((double)x * inv);
}

extern const uint64_t nb__exp_table[32];

/* 2^(k/32)·p(r) for k in ki's low bits (its bits with `bias` added: 1 << 16 negates), p(r) =
 * 1 + c2·r + c1·r² + c0·r³ evaluated as glibc's expf and powf evaluate it, in double */
static inline __attribute__((always_inline)) double
nb__exp_scaled(uint64_t ki, uint64_t bias, double r, double c0, double c1, double c2)
{
    uint64_t tb = nb__exp_table[ki & 31] + ((ki + bias) << 47);
    double t;
    memcpy(&t, &tb, sizeof t);
    double p = fma(c0, r, c1);
    double r2 = r * r;
    double y = fma(c2, r, 1.0);
    y = fma(p, r2, y);
    return y * t;
}

/**
 * e^x with the bits of glibc's expf (2.28 and later, as its FMA build computes it: every
 * float checked, on glibc 2.36), in a form whose loops vectorise: in double, x·32/ln 2 is
 * split into k + r, |r| <= 1/2, and e^x = 2^(k/32) · p(r ln 2 / 32), 2^(k/32) from a table
 * of 32 and p of degree 3, rounded once to float. Every lane computes that on x clamped into
 * the range where it holds, and the ends are then selected in: +inf above 88.72, +0 below
 * -103.97. A NaN goes through as x + x would (its payload kept, quieted). The same bits on
 * every CPU: the multiply-adds are fma() (a call where the CPU has none).
 */
static inline __attribute__((always_inline)) float nb__expf(float x)
{
#ifdef NB__MATHF_LIBM
    return expf(x);
#else
    const double inv_ln2_n = 0x1.71547652b82fep+5, shift = 0x1.8p+52;
    const double c0 = 0x1.c6af84b912394p-20, c1 = 0x1.ebfce50fac4f3p-13, c2 = 0x1.62e42ff0c52d6p-6;
    const float hi = 0x1.62e42ep6f, lo = -0x1.9fe368p6f;
    float xc = nb__pick(x < lo, lo, nb__pick(x > hi, hi, x));
    double xd = (double)xc;
    double z = fma(inv_ln2_n, xd, shift); /* k in its low bits */
    uint64_t ki;
    memcpy(&ki, &z, sizeof ki);
    double kd = z - shift;
    double r = fma(inv_ln2_n, xd, -kd);
    float e = (float)nb__exp_scaled(ki, 0, r, c0, c1, c2);
    e = nb__pick(x > hi, INFINITY, e);
    return nb__pick(x < lo, 0.0f, e);
#endif
}

/* a where c, else b, both evaluated (so the loop keeps no branch) */
static inline int32_t ipick(bool c, int32_t a, int32_t b)
{
    int32_t m = -(int32_t)c;
    return (a & m) | (b & ~m);
}

/*
 * e^a - 1 as glibc's expm1f (fdlibm's) computes it, in float, for |a| below 27 ln 2 or a
 * positive and below 0x1.62e43p6 = 88.7228 (callers select the other results in): a = k ln 2
 * + r (k = 0 for |a| <= ln2 / 2, ±1 up to 1.5 ln 2), r split into hi - lo with its rounding
 * error c, a rational approximation of e^r - 1 in r²/2, then the result for k made as fdlibm
 * makes it, 2^k put into the exponent bits. With k1 false, the caller never passes a positive
 * a within (ln2 / 2, 1.5 ln 2) (k = 1; nb__tanhf's arguments) and that path is left out.
 * Below 2^-25 (glibc's own path, which returns a) the k = 0 path gives a's bits too.
 */
static inline __attribute__((always_inline)) float nb__expm1f_core(float a, bool k1)
{
    const float invln2 = 0x1.715476p+0f, ln2_hi = 0x1.62e3p-1f, ln2_lo = 0x1.2fefa2p-17f;
    const float q1 = -0x1.111112p-5f, q2 = 0x1.a01a02p-10f, q3 = -0x1.4ce19ap-14f,
                q4 = 0x1.0cfca8p-18f, q5 = -0x1.afdb76p-23f;
    uint32_t ha = nb__bits(a) & 0x7fffffffu;
    bool neg = a < 0.0f;
    bool k0 = ha <= 0x3eb17218u, near = !k0 & (ha <= 0x3f851591u);
    bool km1 = near & (neg | !k1), kp1 = near & !neg & k1;
    int32_t kg = (int32_t)(invln2 * a + nb__pick(neg, -0.5f, 0.5f));
    float tg = (float)kg;
    float hi = nb__pick(km1, a + ln2_hi, nb__pick(kp1, a - ln2_hi, a - tg * ln2_hi));
    float lo = nb__pick(km1, -ln2_lo, nb__pick(kp1, ln2_lo, tg * ln2_lo));
    int32_t k = ipick(k0, 0, ipick(km1, -1, ipick(kp1, 1, kg)));
    float xr = hi - lo;
    float c = (hi - xr) - lo;
    xr = nb__pick(k0, a, xr);
    float hfx = 0.5f * xr, hxs = xr * hfx;
    float r1 = q5 * hxs + q4;
    r1 = r1 * hxs + q3;
    r1 = r1 * hxs + q2;
    r1 = r1 * hxs + q1;
    r1 = r1 * hxs + 1.0f;
    float t = 3.0f - r1 * hfx;
    float e = hxs * ((r1 - t) / (6.0f - xr * t));
    float r0 = xr - (xr * e - hxs); /* k = 0 */
    e = (xr * (e - c) - c) - hxs;
    float rm1 = 0.5f * (xr - e) - 0.5f; /* k = -1 */
    float rp1 =
        nb__pick(xr < -0.25f, -2.0f * (e - (xr + 0.5f)), 1.0f + 2.0f * (xr - e)); /* k = 1 */
    /* shift counts in range in every lane */
    int32_t ks = ipick(k < 0, 0, ipick(k > 31, 31, k)),
            kt = ipick(k < 0, 0, ipick(k > 126, 126, k));
    uint32_t scale = (uint32_t)k << 23;
    float big = nb__from_bits(nb__bits(1.0f - (e - xr)) + scale) - 1.0f;        /* k < -1, k > 56 */
    float mid = (xr - (e + nb__from_bits((uint32_t)(0x7f - kt) << 23))) + 1.0f; /* 22 < k */
    mid = nb__from_bits(nb__bits(mid) + scale);
    float low = nb__from_bits(0x3f800000u - (0x1000000u >> ks)) - (e - xr); /* 1 < k <= 22 */
    low = nb__from_bits(nb__bits(low) + scale);
    float rk = nb__pick((k <= -2) | (k > 56), big, nb__pick(k > 22, mid, low));
    if (k1) rk = nb__pick(k == 1, rp1, rk);
    return nb__pick(k == 0, r0, nb__pick(k == -1, rm1, rk));
}

/*
 * e^x - 1 with the bits of glibc's expm1f: nb__expm1f_core where it holds; -1 below -27 ln 2
 * and at -inf; +inf from 0x1.62e43p6 up; a NaN's own bits through x + x.
 */
static inline __attribute__((always_inline)) float nb__expm1f(float x)
{
#ifdef NB__MATHF_LIBM
    return expm1f(x);
#else
    uint32_t hx = nb__bits(x) & 0x7fffffffu;
    bool neg = (nb__bits(x) >> 31) != 0;
    bool over = !neg & (hx >= 0x42b17218u), minus1 = neg & (hx >= 0x4195b844u);
    float v = nb__expm1f_core(nb__pick(over | minus1, 1.0f, x), true);
    v = nb__pick(minus1, -1.0f, nb__pick(over, INFINITY, v));
    return nb__pick(hx > 0x7f800000u, x + x, v);
#endif
}

/*
 * tanh x as glibc's tanhf (fdlibm's) computes it: -t / (t + 2), t = e^(-2|x|) - 1, below 1;
 * 1 - 2 / (t + 2), t = e^(2|x|) - 1, from 1 to 22; 1 beyond (the sign put back); ±1 at ±inf
 * and a NaN's own bits through 1 / x. (glibc's x·(1 + x) below 2^-55 is what the first
 * formula gives there.)
 */
static inline __attribute__((always_inline)) float nb__tanhf(float x)
{
#ifdef NB__MATHF_LIBM
    return tanhf(x);
#else
    uint32_t ix = nb__bits(x) & 0x7fffffffu;
    bool sign = (nb__bits(x) >> 31) != 0, below1 = ix <= 0x3f7fffffu, beyond = ix > 0x41afffffu;
    float ax = nb__pick(beyond, 1.0f, nb__from_bits(ix)); /* |x|, in nb__expm1f_core's range */
    float t = nb__expm1f_core(nb__pick(below1, -2.0f * ax, ax + ax), false);
    float z = nb__pick(below1, -t / (t + 2.0f), 1.0f - 2.0f / (t + 2.0f));
    z = nb__pick(beyond, 1.0f - 1e-30f, z);
    z = nb__pick(sign, -z, z);
    float q = 1.0f / x;
    return nb__pick(ix >= 0x7f800000u, nb__pick(sign, q - 1.0f, q + 1.0f), z);
#endif
}

/* The odd polynomials of nb__erff, in Horner's order, each step as fdlibm rounds it */
static inline __attribute__((always_inline)) float nb__horner(float z, const float *c, int n)
{
    float r = c[0];
    for (int i = 1; i < n; i++) r = r * z + c[i];
    return r;
}

/*
 * erf x as glibc's erff (fdlibm's) computes it, in float: x + x·p(x²)/q(x²) below 0.84375
 * (x + 0.128·x below 2^-28), ±(0.845 + p(|x| - 1)/q(|x| - 1)) below 1.25, then up to 6
 * ±(1 - e^(-z² - 0.5625)·e^((z - |x|)(z + |x|) + R(1/x²)/S(1/x²)) / |x|), z being |x| with
 * its 12 low bits cleared and R/S one of two rational functions split at 1/0.35, and ±1
 * beyond. Every lane computes every region; e^ is nb__expf, glibc's expf.
 */
static inline __attribute__((always_inline)) float nb__erff(float x)
{
#ifdef NB__MATHF_LIBM
    return erff(x);
#else
    static const float pp[] = {-0x1.8ead62p-16f, -0x1.7a2912p-8f, -0x1.d2a51ep-6f, -0x1.4cd7d6p-2f,
                               0x1.06eba8p-3f};
    static const float qq[] = {-0x1.09c434p-18f, 0x1.15dc92p-13f, 0x1.4d022cp-8f,
                               0x1.0a54c6p-4f,   0x1.97779cp-2f,  1.0f};
    static const float pa[] = {-0x1.1bf38p-9f, 0x1.22a366p-5f, -0x1.c63984p-4f, 0x1.45fca8p-2f,
                               -0x1.7d241p-2f, 0x1.a8d00ap-2f, -0x1.359b8cp-9f};
    static const float qa[] = {0x1.88b546p-7f,
                               0x1.bedc26p-7f,
                               0x1.02660ep-3f,
                               0x1.2635cep-4f,
                               0x1.14af0ap-1f,
                               0x1.b3e662p-4f,
                               1.0f};
    static const float ra[] = {-0x1.3a0efcp+3f, -0x1.452656p+6f, -0x1.7135cep+7f, -0x1.44cb18p+7f,
                               -0x1.f300aep+5f, -0x1.51e044p+3f, -0x1.63416ep-1f, -0x1.434126p-7f};
    static const float sa[] = {-0x1.eeff2ep-5f, 0x1.a47ef8p+2f, 0x1.b28a3ep+6f,
                               0x1.ad0216p+8f,  0x1.42b192p+9f, 0x1.b290dep+8f,
                               0x1.1350c6p+7f,  0x1.3a6b9cp+4f, 1.0f};
    static const float rb[] = {-0x1.e384eap+8f, -0x1.004616p+10f, -0x1.3ec882p+9f, -0x1.4145d4p+7f,
                               -0x1.1c2096p+4f, -0x1.993ba8p-1f,  -0x1.434124p-7f};
    static const float sb[] = {-0x1.670e24p+4f, 0x1.da874ep+8f, 0x1.3f219cp+11f, 0x1.8ffb76p+11f,
                               0x1.802eb2p+10f, 0x1.45cae2p+8f, 0x1.e568b2p+4f,  1.0f};
    const float efx = 0x1.06eba8p-3f, efx8 = 0x1.06eba8p+1f, erx = 0x1.b0ac16p-1f;
    uint32_t ix = nb__bits(x) & 0x7fffffffu;
    bool sign = (nb__bits(x) >> 31) != 0;
    float ax = nb__from_bits(ix);
    /* below 0.84375 */
    float z = x * x;
    float small = (nb__horner(z, pp, 5) / nb__horner(z, qq, 6)) * x + x;
    small = nb__pick(ix <= 0x317fffffu, efx * x + x, small);
    small = nb__pick((nb__bits(x) & 0x7c000000u) == 0u, 0.0625f * (16.0f * x + efx8 * x), small);
    /* below 1.25 */
    float s1 = ax - 1.0f;
    float pq = nb__horner(s1, pa, 7) / nb__horner(s1, qa, 7);
    float mid = nb__pick(sign, -erx - pq, erx + pq);
    /* below 6 */
    float s = 1.0f / (x * x);
    bool near = ix <= 0x4036db6du;
    float rr = nb__pick(near, nb__horner(s, ra, 8), nb__horner(s, rb, 7));
    float ss = nb__pick(near, nb__horner(s, sa, 9), nb__horner(s, sb, 8));
    float zt = nb__from_bits(ix & 0xfffff000u);
    float e = nb__expf((zt - ax) * (zt + ax) + rr / ss) * nb__expf(-zt * zt - 0.5625f);
    float far = nb__pick(sign, e / ax - 1.0f, 1.0f - e / ax);
    float r = nb__pick(
        ix <= 0x3f57ffffu, small,
        nb__pick(ix <= 0x3f9fffffu, mid,
                 nb__pick(ix <= 0x40bfffffu, far, nb__pick(sign, 1e-30f - 1.0f, 1.0f - 1e-30f))));
    float q = 1.0f / x;
    return nb__pick(ix > 0x7f7fffffu, (float)(1 - 2 * (int32_t)sign) + q, r);
#endif
}

/* The table of nb__logf: for z in the i-th of 16 intervals of [0x1.66p-1, 0x1.66p0), 1/c (at 2i)
 * and ln c (at 2i + 1) for a c near its centre, in double */
extern const double nb__log_table[32];
/* The table of nb__log2f: log2 c for the same c */
extern const double nb__log2_table[16];

/*
 * The reduction of nb__logf and nb__log2f, glibc's: x = 2^k·z with z in [0x1.66p-1, 0x1.66p0)
 * (subnormals scaled by 2^23 first), z in the tables' i-th interval, and r = z/c - 1 in double.
 */
static inline __attribute__((always_inline)) double nb__log_reduce(float x, int32_t *k, uint64_t *i)
{
    uint32_t ox = nb__bits(x);
    bool sub = ox - 1u < 0x007fffffu; /* positive subnormals, scaled to normal numbers */
    uint32_t ix = (uint32_t)ipick(sub, (int32_t)(nb__bits(x * 0x1p23f) - (23u << 23)), (int32_t)ox);
    uint32_t tmp = ix - 0x3f330000u;
    *i = (tmp >> 19) & 15u; /* 64 bits wide, as GCC gathers by it */
    *k = (int32_t)tmp >> 23;
    uint32_t iz = ix - (tmp & 0xff800000u);
    return fma((double)nb__from_bits(iz), nb__log_table[2 * *i], -1.0);
}

/* The ends of nb__logf and nb__log2f selected into v: -inf at ±0, +inf at +inf, and
 * (x - x) / (x - x) below 0 (but -0) and at NaN (a NaN's payload kept, quieted) */
static inline __attribute__((always_inline)) float nb__log_ends(float x, float v)
{
    uint32_t ox = nb__bits(x);
    v = nb__pick((ox & 0x7fffffffu) == 0u, -INFINITY, v);
    v = nb__pick(ox == 0x7f800000u, INFINITY, v);
    return nb__pick((ox > 0x7f800000u) & (ox != 0x80000000u), (x - x) / (x - x), v);
}

/*
 * ln x with the bits of glibc's logf (2.27 and later, as its FMA build computes it: every
 * float checked, on glibc 2.36): x = 2^k·z (nb__log_reduce), then in double ln x = k ln 2 +
 * ln c + p(z/c - 1), 1/c and ln c from a table of 16 and p of degree 4, rounded once to float.
 * Every lane computes that, then the ends are selected in (nb__log_ends).
 */
static inline __attribute__((always_inline)) float nb__logf(float x)
{
#ifdef NB__MATHF_LIBM
    return logf(x);
#else
    const double ln2 = 0x1.62e42fefa39efp-1, a0 = -0x1.00ea348b88334p-2, a1 = 0x1.5575b0be00b6ap-2,
                 a2 = -0x1.ffffef20a4123p-2;
    int32_t k;
    uint64_t i;
    double r = nb__log_reduce(x, &k, &i);
    double y0 = fma((double)k, ln2, nb__log_table[2 * i + 1]);
    double r2 = r * r;
    double y = fma(a1, r, a2);
    y = fma(a0, r2, y);
    y = fma(y, r2, y0 + r);
    return nb__log_ends(x, (float)y);
#endif
}

/*
 * log2 x with the bits of glibc's log2f (2.27 and later, as its FMA build computes it: every
 * float checked, on glibc 2.36): nb__log_reduce, then in double log2 x = k + log2 c +
 * p(z/c - 1), p of degree 4 with no constant term, rounded once to float (+0 at 1, where the
 * table's c is 1), and nb__log_ends.
 */
static inline __attribute__((always_inline)) float nb__log2f(float x)
{
#ifdef NB__MATHF_LIBM
    return log2f(x);
#else
    const double a0 = -0x1.712b6f70a7e4dp-2, a1 = 0x1.ecabf496832ep-2, a2 = -0x1.715479ffae3dep-1,
                 a3 = 0x1.715475f35c8b8p0;
    int32_t k;
    uint64_t i;
    double r = nb__log_reduce(x, &k, &i);
    double y0 = nb__log2_table[i] + (double)k;
    double r2 = r * r;
    double y = fma(a1, r, a2);
    y = fma(a0, r2, y);
    double p = fma(a3, r, y0);
    y = fma(y, r2, p);
    return nb__log_ends(x, (float)y);
#endif
}

/* 0 where y (by its bits iy) is not an integer, 1 where it is odd, 2 where it is even; a
 * finite y's answer (glibc's checkint) */
static inline int32_t nb__pow_parity(uint32_t iy)
{
    int32_t e = (int32_t)((iy >> 23) & 0xffu);
    /* the bit of 1 sits at 0x96 - e, for 0x7f <= e <= 0x96; clamped to 0..23 elsewhere */
    uint32_t unit = 1u << ipick(e < 0x7f, 23, ipick(e > 0x96, 0, 0x96 - e));
    int32_t r = ipick((iy & (unit - 1u)) != 0u, 0, ipick((iy & unit) != 0u, 1, 2));
    return ipick(e < 0x7f, 0, ipick(e > 0x96, 2, r));
}

/* x (by its bits) is ±0, ±inf or a NaN */
static inline bool nb__zero_inf_nan(uint32_t ix)
{
    return 2u * ix - 1u >= 2u * 0x7f800000u - 1u;
}

/* x (by its bits) is a signalling NaN */
static inline bool nb__signalling(uint32_t ix)
{
    return 2u * (ix ^ 0x00400000u) > 2u * 0x7fc00000u;
}

/*
 * x^y with the bits of glibc's powf (2.28 and later, as its FMA build computes it): in double,
 * log2 |x| by log2f's reduction (nb__log_reduce) and a polynomial of degree 5, times y, then
 * 2^(y log2 |x|) as expf's table of 2^(i/32) and a polynomial of degree 3 compute it, with the
 * sign of x for an odd integer y, rounded once to float. Every lane computes that, then selects
 * libm's ends in: ±inf above 2^127.99, ±2^-149 and ±0 near and below 2^-150; a NaN for a negative
 * x and a y that is not an integer; x² (or 1 / x²), with its sign for an odd y, for x ±0, ±inf
 * or NaN; and for y ±0, ±inf or NaN, 1 (y ±0, or x 1), x + y (a NaN, and a signalling NaN where
 * the 1 would be), 1 (x ±1), 0 or inf (|x| below or above 1, by y's sign).
 */
static inline __attribute__((always_inline)) float nb__powf(float x, float y)
{
#ifdef NB__MATHF_LIBM
    return powf(x, y);
#else
    const double a0 = 0x1.27616c9496e0bp-2, a1 = -0x1.71969a075c67ap-2, a2 = 0x1.ec70a6ca7baddp-2,
                 a3 = -0x1.7154748bef6c8p-1, a4 = 0x1.71547652ab82bp0;
    const double c0 = 0x1.c6af84b912394p-5, c1 = 0x1.ebfce50fac4f3p-3, c2 = 0x1.62e42ff0c52d6p-1;
    const double shift = 0x1.8p+47; /* 1.5·2^52 / 32: k/32 in the low bits */
    uint32_t ix = nb__bits(x), iy = nb__bits(y);
    int32_t parity = nb__pow_parity(iy);
    bool negative = (ix >> 31) & (parity == 1); /* the sign x^y takes */
    uint32_t sign = (uint32_t)negative << 31;
    bool x_nan = 2u * ix > 2u * 0x7f800000u, y_nan = 2u * iy > 2u * 0x7f800000u;
    /* log2 |x| */
    int32_t k;
    uint64_t i;
    double r = nb__log_reduce(nb__from_bits(ix & 0x7fffffffu), &k, &i);
    double y0 = nb__log2_table[i] + (double)k;
    double r2 = r * r;
    double p = fma(a0, r, a1);
    double q = fma(a2, r, a3);
    double r4 = r2 * r2;
    double t = fma(a4, r, y0);
    t = fma(q, r2, t);
    double ylogx = (double)y * fma(p, r4, t);
    /* 2^ylogx */
    double kd = ylogx + shift;
    uint64_t ki;
    memcpy(&ki, &kd, sizeof ki);
    kd -= shift;
    float v = (float)nb__exp_scaled(ki, (uint64_t)negative << 16, ylogx - kd, c0, c1, c2);
    v = nb__pick(ylogx > 0x1.fffffffd1d571p+6, nb__from_bits(sign | 0x7f800000u), v);
    v = nb__pick(ylogx < -149.0, nb__from_bits(sign | 1u), v);
    v = nb__pick(ylogx <= -150.0, nb__from_bits(sign), v);
    /* (x - x) / (x - x) there: a finite x's 0 times inf, the same default NaN by a multiply */
    v = nb__pick((ix >> 31) & (parity == 0), (x - x) * INFINITY, v);
    /* x ±0, ±inf or NaN: x², or 1 / x², whose bits for ±0 and ±inf swap 0 and inf */
    float x2 = x * x;
    x2 = nb__pick(negative, -x2, x2);
    float inv = nb__pick(x2 != x2, x2, nb__from_bits(nb__bits(x2) ^ 0x7f800000u));
    v = nb__pick(nb__zero_inf_nan(ix), nb__pick(iy >> 31, inv, x2), v);
    /* y ±0, ±inf or NaN */
    /* x + y where either is a NaN: x's NaN, quieted, else y's (as x86 adds them, whose
     * operands a compiler may swap) */
    float sum = nb__from_bits((x_nan ? ix : iy) | 0x00400000u);
    float w = nb__pick((2u * ix < 2u * 0x3f800000u) == !(iy >> 31), 0.0f, y * y);
    w = nb__pick(2u * ix == 2u * 0x3f800000u, 1.0f, w);
    w = nb__pick(x_nan | y_nan, sum, w);
    w = nb__pick(ix == 0x3f800000u, nb__pick(nb__signalling(iy), sum, 1.0f), w);
    w = nb__pick(2u * iy == 0u, nb__pick(nb__signalling(ix), sum, 1.0f), w);
    return nb__pick(nb__zero_inf_nan(iy), w, v);
#endif
}

/*
 * ln(1 + x) as glibc's log1pf (fdlibm's) computes it, in float: f = x below 0.4142 and above
 * -0.2929 (k = 0); otherwise 1 + x = 2^k·(1 + f), f in [√½ - 1, √2 - 1), with c the rounding
 * error of 1 + x over 1 + x; then s = f / (2 + f) and ln(1 + f) = f - (f²/2 - s(f²/2 + R(s²)))
 * plus k ln 2 (two parts) and c, or a shorter series where f's bits make it exact (1 + x a power
 * of 2 by its mantissa). Below 2^-29, x - x²/2 (x below 2^-54); -inf at -1, NaN below, a NaN's
 * own bits through x + x.
 */
static inline __attribute__((always_inline)) float nb__log1pf(float x)
{
#ifdef NB__MATHF_LIBM
    return log1pf(x);
#else
    const float ln2_hi = 0x1.62e3p-1f, ln2_lo = 0x1.2fefa2p-17f;
    const float lp1 = 0x1.555556p-1f, lp2 = 0x1.99999ap-2f, lp3 = 0x1.24924ap-2f,
                lp4 = 0x1.c71c52p-3f, lp5 = 0x1.74664ap-3f, lp6 = 0x1.39a09ep-3f,
                lp7 = 0x1.2f112ep-3f;
    int32_t hx = (int32_t)nb__bits(x), ax = hx & 0x7fffffff;
    bool k0 = (hx < 0x3ed413d7) & ((hx > 0) | (hx <= (int32_t)0xbe95f61fu));
    /* 1 + x, its exponent and the rounding error, for the lanes with k != 0 */
    bool huge = hx >= 0x5a000000;
    float u = nb__pick(huge, x, 1.0f + x);
    int32_t hu = (int32_t)nb__bits(u);
    int32_t k = (hu >> 23) - 127;
    float c = nb__pick(k > 0, 1.0f - (u - x), x - (u - 1.0f)) / u;
    c = nb__pick(huge, 0.0f, c);
    hu &= 0x007fffff;
    bool up = hu >= 0x3504f7;
    u = nb__from_bits((uint32_t)ipick(up, hu | 0x3f000000, hu | 0x3f800000));
    k = ipick(up, k + 1, k);
    hu = ipick(up, (0x00800000 - hu) >> 2, hu);
    float f = nb__pick(k0, x, u - 1.0f);
    k = ipick(k0, 0, k);
    hu = ipick(k0, 1, hu);
    float fk = (float)k;
    float hfsq = 0.5f * f * f;
    /* f with few bits (hu == 0) */
    float rs = hfsq * (1.0f - 0.666666666666666666f * f);
    float exact0 = nb__pick(k == 0, 0.0f, fk * ln2_hi + (c + fk * ln2_lo));
    float shorter = nb__pick(k == 0, f - rs, fk * ln2_hi - ((rs - (fk * ln2_lo + c)) - f));
    shorter = nb__pick(f == 0.0f, exact0, shorter);
    /* the general case */
    float s = f / (2.0f + f), z = s * s;
    float r = z * (lp1 + z * (lp2 + z * (lp3 + z * (lp4 + z * (lp5 + z * (lp6 + z * lp7))))));
    float gen = nb__pick(k == 0, f - (hfsq - s * (hfsq + r)),
                         fk * ln2_hi - ((hfsq - (s * (hfsq + r) + (fk * ln2_lo + c))) - f));
    float v = nb__pick(hu == 0, shorter, gen);
    /* the ends */
    float tiny = nb__pick(ax < 0x24800000, x, x - x * x * 0.5f);
    v = nb__pick(ax < 0x31000000, tiny, v);
    v = nb__pick(hx >= 0x7f800000, x + x, v);
    v = nb__pick((hx < 0) & (ax >= 0x3f800000), (x - x) / (x - x), v);
    return nb__pick(x == -1.0f, -INFINITY, v);
#endif
}

/* ln σ(x) = min(x, 0) - ln(1 + e^-|x|), as PyTorch's CPU kernel computes it (0 for the min
 * at NaN), from nb__expf and nb__log1pf: log_sigmoid's forward and the binary cross-entropy
 * with logits */
static inline __attribute__((always_inline)) float nb__log_sigmoidf(float x)
{
    return nb__pick(x < 0.0f, x, 0.0f) - nb__log1pf(nb__expf(-fabsf(x)));
}

/* a where the mask m is all ones, b where it is zero, by the bits, for doubles */
static inline double nb__dblend(uint64_t m, double a, double b)
{
    uint64_t ab, bb;
    memcpy(&ab, &a, sizeof ab);
    memcpy(&bb, &b, sizeof bb);
    ab = (ab & m) | (bb & ~m);
    memcpy(&a, &ab, sizeof a);
    return a;
}

/* a where c, else b, by the bits, for doubles */
static inline double nb__dpick(bool c, double a, double b)
{
    return nb__dblend(0u - (uint64_t)c, a, b);
}

/* x negated where bit 1 of two is set (two is 0 or 2) */
static inline double nb__dflip(double x, uint32_t two)
{
    uint64_t b;
    memcpy(&b, &x, sizeof b);
    b ^= (uint64_t)two << 62;
    memcpy(&x, &b, sizeof x);
    return x;
}

/* 4/π in bits, glibc's __inv_pio4: entry i holds bits 8i to 8i + 31 */
extern const uint32_t nb__inv_pio4[24];

/*
 * glibc's reduce_large: for the bits xi of a float of magnitude 120 or more, |x| mod π/2 in
 * [-π/4, π/4] and the quadrant in *q. The 24-bit mantissa times 96 bits of 4/π (from the word
 * the exponent picks) gives the remainder exactly in 2.62 fixed point, converted to double and
 * scaled by π/2 · 2^-62. Integer arithmetic only, defined for any bits (the caller selects the
 * lanes where it holds).
 */
static inline __attribute__((always_inline)) double nb__reduce_large(uint32_t xi, int32_t *q)
{
    uint32_t i = (xi >> 26) & 15u;
    uint32_t shift = (xi >> 23) & 7u;
    uint32_t m = ((xi & 0xffffffu) | 0x800000u) << shift;
    uint64_t r0 = (uint32_t)(m * nb__inv_pio4[i]);
    uint64_t r1 = (uint64_t)m * nb__inv_pio4[i + 4];
    uint64_t r2 = (uint64_t)m * nb__inv_pio4[i + 8];
    r0 = ((r2 >> 32) | (r0 << 32)) + r1;
    uint64_t n = (r0 + (1ull << 61)) >> 62;
    r0 -= n << 62;
    *q = (int32_t)n;
    return (double)(int64_t)r0 * 0x1.921fb54442d18p-62;
}

/*
 * sin y (cosine false) or cos y (true) with the bits of glibc's sinf and cosf (2.28 and later,
 * as their FMA builds compute them: every float checked, on glibc 2.36). In double: below π/4,
 * y itself; up to 120, y - n·π/2 with n the nearest quadrant (one fused multiply-add);
 * beyond, nb__reduce_large. Then the sine polynomial of degree 7 or the cosine one of degree 8
 * by the quadrant's parity, the sign by the quadrant, rounded once to float. Every lane
 * computes every path and selects its own: sin y = y and cos y = 1 below 2^-12, and
 * (y - y) / (y - y) at ±inf and NaN. With large false the reduction beyond 120 is left out:
 * call it so only for arguments below 120 in magnitude (nb__trig_small), where it gives the
 * same bits in about half the time.
 */
static inline __attribute__((always_inline)) float nb__sincosf(float y, bool cosine, bool large)
{
#ifdef NB__MATHF_LIBM
    (void)large;
    return cosine ? cosf(y) : sinf(y);
#else
    const double hpi_inv = 0x1.45f306dc9c883p+23, hpi = 0x1.921fb54442d18p0;
    const double c0 = 1.0, c1 = -0x1.ffffffd0c621cp-2, c2 = 0x1.55553e1068f19p-5,
                 c3 = -0x1.6c087e89a359dp-10, c4 = 0x1.99343027bf8c3p-16;
    const double s1 = -0x1.555545995a603p-3, s2 = 0x1.1107605230bc4p-7, s3 = -0x1.994eb3774cf24p-13;
    uint32_t xi = nb__bits(y), top = (xi >> 20) & 0x7ffu;
    bool small = top < 0x3f4u, tiny = top < 0x398u, medium = top < 0x42fu, finite = top < 0x7f8u;
    /* up to 120: the nearest quadrant n, y - n·π/2 */
    double xm = (double)nb__pick(medium, y, 0.0f);
    int32_t n = ((int32_t)(xm * hpi_inv) + 0x800000) >> 24;
    double rm = fma(-(double)n, hpi, xm);
    /* beyond */
    int32_t nl = 0;
    double rl = large ? nb__reduce_large(xi, &nl) : 0.0;
    int32_t quad = ipick(medium, n, nl),
            signq = ipick(medium, n, nl + (int32_t)(xi >> 31)); /* y's sign */
    double r = nb__dpick(small, (double)y, nb__dpick(medium, rm, rl));
    quad = ipick(small, 0, quad);
    signq = ipick(small, 0, signq);
    /* the sign of sin in quadrants 0..3: +, -, -, + (on the bits: a test of a bit of an integer
     * keeps GCC's loop scalar) */
    double xs = nb__dflip(r, ((uint32_t)signq + 1u) & 2u), x2 = r * r;
    /* sine */
    double x3 = xs * x2, sp = fma(x2, s3, s2), x7 = x3 * x2;
    double sv = fma(x7, sp, fma(x3, s1, xs));
    /* cosine, negated in quadrants 2 and 3 (glibc's second table) */
    double x4 = x2 * x2, cp = fma(x2, c4, c3), cq = fma(x2, c1, c0), x6 = x4 * x2;
    double cv = nb__dflip(fma(x6, cp, fma(x4, c2, cq)), (uint32_t)signq & 2u);
    /* the cosine polynomial where the quadrant's parity and the function differ (a mask made
     * from the integer, for the same reason) */
    uint64_t odd = 0u - (uint64_t)(((uint32_t)quad ^ (uint32_t)cosine) & 1u);
    float v = (float)nb__dblend(odd, cv, sv);
    v = nb__pick(tiny, cosine ? 1.0f : y, v);
    return nb__pick(finite, v, (y - y) / (y - y));
#endif
}

/* Every x[i·stride], i < n, is below 120 in magnitude (and a number): nb__sincosf may leave
 * out its large reduction for them. sin's and cos's kernels ask it of blocks of NB__TRIG_BLOCK. */
#define NB__TRIG_BLOCK 256
static inline __attribute__((always_inline)) bool nb__trig_small(const float *x, int64_t stride,
                                                                 int64_t n)
{
    uint32_t top = 0;
    for (int64_t i = 0; i < n; i++) {
        uint32_t b = nb__bits(x[i * stride]) & 0x7fffffffu;
        top = b > top ? b : top;
    }
    return top < 0x42f00000u;
}

#endif /* NABLA_OPS_MATHF_H */
