/*
 * Random numbers that reproduce PyTorch 1.13's CPU generator bit for bit (see FIDELITY.md,
 * "Random numbers"): a 32-bit mt19937 seeded like at::mt19937, the same draws per element,
 * and, for randn of 16 or more floats, the same float polynomials PyTorch's AVX2 kernel
 * evaluates (avx_mathfun.h's log256_ps and sincos256_ps as GCC compiles them with -mfma and
 * its default -ffp-contract=fast for C++: a product that feeds an add is fused, the first in
 * source order when both operands are products). Those FMAs are written out with fmaf();
 * every other product is rounded on its own, so nothing else may be fused: GCC contracts
 * nothing in ISO C mode (-std=c11, from CMAKE_C_EXTENSIONS OFF), clang obeys the pragma
 * below, and the products left that a -ffp-contract=fast build could fuse are exact (powers
 * of two), so even that changes no bit (checked with gcc and clang, -O3 -march=native).
 * The randn path for fewer than 16 values uses the C library's double log/sin/cos, as
 * PyTorch does: bit identity there assumes the same libm (glibc).
 *
 * The default generator is a process-wide static, seeded lazily (once, under pthread_once)
 * with the seed of a fresh torch.Generator() (PyTorch seeds its default one
 * nondeterministically; a fixed seed keeps unseeded programs reproducible). As in PyTorch,
 * every generator has a mutex, held for the whole of one call (one tensor's fill, one
 * permutation, one raw draw), so threads may share a generator: each call's values are a
 * contiguous run of the stream, in whatever order the threads take the lock. Threads that
 * need reproducible values give each its own generator.
 */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <pthread.h>
#include <string.h>

#include "core/internal.h"
#include "core/rng.h"

#define MT_N 624
#define MT_M 397

/* PyTorch's default_rng_seed_val: what torch.Generator() starts from. */
#define NB__DEFAULT_SEED UINT64_C(67280421310721)

struct nb_generator {
    uint32_t state[MT_N];
    int left; /* draws left before the state is regenerated, plus one */
    int next; /* index of the next state word to temper */
    uint64_t seed;
    bool has_normal;      /* PyTorch's next_double_normal_sample is set */
    double next_normal;   /* the cached r·sin θ of the last Box–Muller pair, unscaled */
    pthread_mutex_t lock; /* held by every call for all of its draws */
};

static nb_generator default_gen = {.lock = PTHREAD_MUTEX_INITIALIZER};
static pthread_once_t default_once = PTHREAD_ONCE_INIT;

/* A draw holds the generator's lock for a whole fill: the child of a fork gets it free. */
__attribute__((constructor)) static void rng_atfork(void)
{
    nb__lock_across_fork(&default_gen.lock);
}

/* ---- mt19937 --------------------------------------------------------------------------- */

static void gen_seed(nb_generator *g, uint64_t seed)
{
    /* at::mt19937 keeps the 64-bit seed but initialises from its low 32 bits only, so
       seeds s and s + 2^32 give the same stream. */
    g->seed = seed;
    g->state[0] = (uint32_t)(seed & 0xffffffffu);
    for (uint32_t j = 1; j < MT_N; j++) {
        uint32_t prev = g->state[j - 1];
        g->state[j] = 1812433253u * (prev ^ (prev >> 30)) + j;
    }
    g->left = 1;
    g->next = 0;
    g->has_normal = false;
    g->next_normal = 0.0;
}

static uint32_t twist(uint32_t u, uint32_t v)
{
    uint32_t mixed = (u & 0x80000000u) | (v & 0x7fffffffu);
    return (mixed >> 1) ^ ((v & 1u) ? 0x9908b0dfu : 0u);
}

static void gen_regenerate(nb_generator *g)
{
    uint32_t *s = g->state;
    int j = 0;
    for (; j < MT_N - MT_M; j++) s[j] = s[j + MT_M] ^ twist(s[j], s[j + 1]);
    for (; j < MT_N - 1; j++) s[j] = s[j + MT_M - MT_N] ^ twist(s[j], s[j + 1]);
    s[MT_N - 1] = s[MT_M - 1] ^ twist(s[MT_N - 1], s[0]);
    g->left = MT_N;
    g->next = 0;
}

static inline uint32_t temper(uint32_t y)
{
    y ^= y >> 11;
    y ^= (y << 7) & 0x9d2c5680u;
    y ^= (y << 15) & 0xefc60000u;
    return y ^ (y >> 18);
}

static uint32_t gen_u32(nb_generator *g)
{
    if (--g->left == 0) gen_regenerate(g);
    return temper(g->state[g->next++]);
}

/* n draws into out: the values gen_u32 gives n calls in turn, leaving the same state, with
 * the tempering in a loop that vectorises. */
NB__CLONES static void gen_u32_n(nb_generator *g, uint32_t *out, int64_t n)
{
    while (n > 0) {
        if (g->left == 1) {
            gen_regenerate(g);
            g->left = MT_N + 1; /* as before a draw: one more than the words left */
        }
        int64_t take = g->left - 1 < n ? g->left - 1 : n;
        const uint32_t *w = g->state + g->next;
        for (int64_t i = 0; i < take; i++) out[i] = temper(w[i]);
        g->next += (int)take;
        g->left -= (int)take;
        out += take;
        n -= take;
    }
}

/* Two draws, the first one high: PyTorch's random64(). */
static uint64_t gen_u64(nb_generator *g)
{
    uint64_t hi = gen_u32(g);
    uint64_t lo = gen_u32(g);
    return (hi << 32) | lo;
}

/* uniform_real_distribution<float>(0, 1): the low 24 bits of one draw, times 2^-24. */
static float gen_float01(nb_generator *g)
{
    return (float)(gen_u32(g) & 0xffffffu) * 0x1p-24f;
}

/* uniform_real_distribution<double>(0, 1): the low 53 bits of random64(), times 2^-53. */
static double gen_double01(nb_generator *g)
{
    return (double)(gen_u64(g) & ((UINT64_C(1) << 53) - 1)) * 0x1p-53;
}

static void default_init(void)
{
    gen_seed(&default_gen, NB__DEFAULT_SEED);
}

static nb_generator *default_generator(void)
{
    pthread_once(&default_once, default_init);
    return &default_gen;
}

/* gen itself, or the default generator for NULL (where there is no error to report). */
static nb_generator *or_default(nb_generator *gen)
{
    return gen ? gen : default_generator();
}

/*
 * Resolve an optional generator argument into *gen. A NULL one while an error is pending is
 * the failed result of an earlier call (nb_generator_new out of memory), not "absent": the
 * caller fails with that error instead of drawing from the default generator.
 */
static nb_status pick(nb_generator **gen)
{
    if (!*gen) {
        nb_status pending = nb__pending();
        if (pending != NB_OK) return pending;
        *gen = default_generator();
    }
    return NB_OK;
}

static void gen_lock(nb_generator *g)
{
    pthread_mutex_lock(&g->lock);
}

static void gen_unlock(nb_generator *g)
{
    pthread_mutex_unlock(&g->lock);
}

/* ---- the AVX2 Box–Muller kernel, one lane at a time -------------------------------------- */

static float bits_to_float(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static uint32_t float_to_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

/*
 * The constants are written as double literals narrowed to float, as the AVX code's
 * `static const float c[8] = {<double literal>, ...}` does (decimal → double → float, which
 * is not always the same float as a direct decimal → float).
 */
#define F(x) ((float)(x))

/* Cephes logf as log256_ps evaluates it; x > 0. */
static float cephes_logf(float x)
{
    const float min_norm = bits_to_float(0x00800000u);
    if (x < min_norm) x = min_norm;
    uint32_t bits = float_to_bits(x);
    int32_t expo = (int32_t)(bits >> 23) - 127;
    /* the mantissa, scaled into [0.5, 1) */
    float m = bits_to_float((bits & ~0x7f800000u) | 0x3f000000u);
    float e = (float)expo + 1.0f;

    bool below = m < F(0.707106781186547524);
    float tmp = below ? m : 0.0f;
    m = m - 1.0f;
    e = e - (below ? 1.0f : 0.0f);
    m = m + tmp;

    float z = m * m;
    float y = F(7.0376836292E-2);
    y = fmaf(y, m, F(-1.1514610310E-1));
    y = fmaf(y, m, F(1.1676998740E-1));
    y = fmaf(y, m, F(-1.2420140846E-1));
    y = fmaf(y, m, F(+1.4249322787E-1));
    y = fmaf(y, m, F(-1.6668057665E-1));
    y = fmaf(y, m, F(+2.0000714765E-1));
    y = fmaf(y, m, F(-2.4999993993E-1));
    y = fmaf(y, m, F(+3.3333331174E-1));
    y = y * m;
    /* y*z + e*q1: GCC fuses the product that comes first in the source, y*z */
    y = fmaf(y, z, e * F(-2.12194440e-4));
    y = y - z * 0.5f; /* z*0.5 is exact: fused or not, the same */
    m = m + y;
    return fmaf(e, F(0.693359375), m);
}

/* Cephes sinf and cosf of x together, as sincos256_ps evaluates them. */
static void cephes_sincosf(float x, float *s, float *c)
{
    uint32_t sign_sin = float_to_bits(x) & 0x80000000u;
    x = fabsf(x);

    /* j = the octant rounded up to even, as an integer and as a float */
    int32_t j = (int32_t)(x * F(1.27323954473516));
    j = (j + 1) & ~1;
    float y = (float)j;

    uint32_t swap_sign_sin = ((uint32_t)j & 4u) << 29;
    bool sin_poly_for_sin = (j & 2) == 0;
    uint32_t sign_cos = (~(uint32_t)(j - 2) & 4u) << 29;
    sign_sin ^= swap_sign_sin;

    /* extended-precision reduction x - y·π/4 in three parts */
    x = fmaf(y, F(-0.78515625), x);
    x = fmaf(y, F(-2.4187564849853515625e-4), x);
    x = fmaf(y, F(-3.77489497744594108e-8), x);

    float z = x * x;
    float yc = fmaf(F(2.443315711809948E-005), z, F(-1.388731625493765E-003));
    yc = fmaf(yc, z, F(4.166664568298827E-002));
    yc = yc * z;
    yc = fmaf(yc, z, -(z * 0.5f));
    yc = yc + 1.0f;

    float ys = fmaf(F(-1.9515295891E-4), z, F(8.3321608736E-3));
    ys = fmaf(ys, z, F(-1.6666654611E-1));
    ys = ys * z;
    ys = fmaf(ys, x, x);

    /* the AVX code selects with masks and adds: keep its signed zeros */
    float sin_part2 = sin_poly_for_sin ? ys : 0.0f;
    float sin_part1 = sin_poly_for_sin ? 0.0f : yc;
    float ys_rest = ys - sin_part2;
    float yc_rest = yc - sin_part1;
    *s = bits_to_float(float_to_bits(sin_part1 + sin_part2) ^ sign_sin);
    *c = bits_to_float(float_to_bits(yc_rest + ys_rest) ^ sign_cos);
}

/* normal_fill_16_AVX2: 16 uniforms in d become 16 normals, pairing j with j + 8. */
static void normal_fill_16(float *d, float mean, float std)
{
    const float two_pi = (float)(2.0 * 3.14159265358979323846);
    for (int j = 0; j < 8; j++) {
        float u1 = 1.0f - d[j]; /* [0, 1) → (0, 1] for the log */
        float u2 = d[j + 8];
        float radius = sqrtf(-2.0f * cephes_logf(u1));
        float sin_t, cos_t;
        cephes_sincosf(two_pi * u2, &sin_t, &cos_t);
        d[j] = fmaf(radius * cos_t, std, mean);
        d[j + 8] = fmaf(radius * sin_t, std, mean);
    }
}

/* normal_distribution<double>: Box–Muller in double, the partner cached in the generator. */
static double normal_double(nb_generator *g)
{
    if (g->has_normal) {
        g->has_normal = false;
        return g->next_normal;
    }
    double u1 = gen_double01(g);
    double u2 = gen_double01(g);
    double r = sqrt(-2.0 * log(1.0 - u2));
    double theta = 2.0 * 3.14159265358979323846 * u1;
    g->next_normal = r * sin(theta);
    g->has_normal = true;
    return r * cos(theta);
}

static void fill_normal(nb_generator *g, float *d, int64_t n, double mean, double std)
{
    if (n >= 16) {
        /* the vectorised path: all uniforms first, then 16 at a time; a ragged tail redraws
           the last 16 and converts them again */
        const float fmean = (float)mean, fstd = (float)std;
        for (int64_t i = 0; i < n; i++) d[i] = gen_float01(g);
        for (int64_t i = 0; i + 16 <= n; i += 16) normal_fill_16(d + i, fmean, fstd);
        if (n % 16 != 0) {
            float *tail = d + n - 16;
            for (int i = 0; i < 16; i++) tail[i] = gen_float01(g);
            normal_fill_16(tail, fmean, fstd);
        }
    } else {
        /* per element, in double; PyTorch's kernel fuses val*std + mean */
        for (int64_t i = 0; i < n; i++) d[i] = (float)fma(normal_double(g), std, mean);
    }
}

static void fill_uniform(nb_generator *g, float *d, int64_t n, float from, float to)
{
    /* x*(to - from) + from in float, fused as PyTorch's AVX2 kernel is compiled */
    const float span = to - from;
    for (int64_t i = 0; i < n; i++) d[i] = fmaf(gen_float01(g), span, from);
}

static void fill_int(nb_generator *g, float *d, int64_t n, int64_t low, int64_t high)
{
    const uint64_t range = (uint64_t)high - (uint64_t)low;
    const bool wide = range >= (UINT64_C(1) << 32);
    for (int64_t i = 0; i < n; i++) {
        uint64_t v = wide ? gen_u64(g) : (uint64_t)gen_u32(g);
        /* (v % range) + low wraps like PyTorch's unsigned sum */
        d[i] = (float)(int64_t)(v % range + (uint64_t)low);
    }
}

/* ---- draws under the generator's lock ------------------------------------------------------ */

typedef enum dist_kind { DIST_UNIFORM, DIST_NORMAL, DIST_INT } dist_kind;

/* What one call draws: uniform on [a, b), normal with mean a and std b, or [low, high). */
typedef struct dist {
    dist_kind kind;
    double a, b;
    int64_t low, high;
} dist;

static void draw(nb_generator *g, float *d, int64_t n, const dist *k)
{
    gen_lock(g);
    switch (k->kind) {
    case DIST_UNIFORM:
        fill_uniform(g, d, n, (float)k->a, (float)k->b);
        break;
    case DIST_NORMAL:
        fill_normal(g, d, n, k->a, k->b);
        break;
    case DIST_INT:
        fill_int(g, d, n, k->low, k->high);
        break;
    }
    gen_unlock(g);
}

/* A new tensor of the given shape filled from gen (NULL: the default generator). */
static nb_tensor *sample(const char *fn, int ndim, const int64_t *dims, nb_generator *gen, dist k)
{
    if (pick(&gen) != NB_OK) return NULL;
    nb_tensor *t = nb__new(fn, ndim, dims);
    if (t) draw(gen, nb_tensor_data(t), nb_tensor_numel(t), &k);
    return t;
}

/* The checks every in-place fill makes first: t, the generator, in-place rules. */
static nb_status check_fill(const char *fn, nb_tensor *t, nb_generator **gen)
{
    if (!t) return nb__null(fn, "t");
    nb_status st = pick(gen);
    return st == NB_OK ? nb__check_inplace(fn, t) : st;
}

/* Fill t in place from gen, once the arguments are checked. */
static nb_status sample_(nb_tensor *t, nb_generator *gen, dist k)
{
    draw(gen, nb_tensor_data(t), nb_tensor_numel(t), &k);
    nb_tensor_bump_version(t);
    return NB_OK;
}

static nb_status check_int_range(const char *fn, int64_t low, int64_t high)
{
    if (low < high) return NB_OK;
    return nb__error(NB_EINVAL, fn, "low (%lld) must be less than high (%lld)", (long long)low,
                     (long long)high);
}

static const dist standard_uniform = {DIST_UNIFORM, 0.0, 1.0, 0, 0};
static const dist standard_normal = {DIST_NORMAL, 0.0, 1.0, 0, 0};

/* ---- internal, for the data layer --------------------------------------------------------- */

uint64_t nb__generator_random64(nb_generator *gen)
{
    nb_generator *g = or_default(gen);
    gen_lock(g);
    uint64_t v = gen_u64(g);
    gen_unlock(g);
    return v;
}

/* out[i] = one where w's i-th random64 (two words, the first high) has its low 53 bits below
 * bound, else 0 */
NB__CLONES static void bernoulli_words(const uint32_t *w, float *out, int64_t n, uint64_t bound,
                                       float one)
{
    for (int64_t i = 0; i < n; i++) {
        uint64_t r = ((uint64_t)w[2 * i] << 32 | w[2 * i + 1]) & ((UINT64_C(1) << 53) - 1);
        out[i] = r < bound ? one : 0.0f;
    }
}

#define BERNOULLI_BLOCK 512

void nb__generator_bernoulli(nb_generator *gen, float *out, int64_t n, double p, float one)
{
    /* u = r·2^-53 < p, r an integer below 2^53, is r < p·2^53 (exact: a power of two), that
     * is r < ⌈p·2^53⌉ */
    uint64_t bound = !(p > 0.0) ? 0 /* NaN too: no draw is below it */
                     : p >= 1.0 ? UINT64_C(1) << 53
                                : (uint64_t)ceil(p * 0x1p53);
    nb_generator *g = or_default(gen);
    uint32_t w[2 * BERNOULLI_BLOCK];
    gen_lock(g);
    for (int64_t i = 0; i < n; i += BERNOULLI_BLOCK) {
        int64_t m = n - i < BERNOULLI_BLOCK ? n - i : BERNOULLI_BLOCK;
        gen_u32_n(g, w, 2 * m);
        bernoulli_words(w, out + i, m, bound, one);
    }
    gen_unlock(g);
}

void nb__randperm(nb_generator *gen, int64_t n, int64_t *out)
{
    /* torch.randperm on CPU: a forward Fisher–Yates shuffle, one 32-bit draw per swap */
    nb_generator *g = or_default(gen);
    if (out)
        for (int64_t i = 0; i < n; i++) out[i] = i;
    gen_lock(g);
    for (int64_t i = 0; i + 1 < n; i++) {
        int64_t z = (int64_t)(gen_u32(g) % (uint64_t)(n - i));
        if (!out) continue; /* only the draws are wanted */
        int64_t tmp = out[i];
        out[i] = out[i + z];
        out[i + z] = tmp;
    }
    gen_unlock(g);
}

/* ---- public API -------------------------------------------------------------------------- */

void nb_manual_seed(uint64_t seed)
{
    nb_generator *g = default_generator();
    gen_lock(g);
    gen_seed(g, seed);
    gen_unlock(g);
}

nb_generator *nb_default_generator(void)
{
    return default_generator();
}

nb_generator *nb_generator_new(uint64_t seed)
{
    nb_generator *g = nb__calloc(sizeof *g);
    if (!g || pthread_mutex_init(&g->lock, NULL) != 0) {
        nb__free(g);
        nb__oom("nb_generator_new");
        return NULL;
    }
    gen_seed(g, seed);
    return g;
}

void nb_generator_free(nb_generator *gen)
{
    if (!gen || gen == &default_gen) return;
    pthread_mutex_destroy(&gen->lock);
    nb__free(gen);
}

void nb_generator_seed(nb_generator *gen, uint64_t seed)
{
    nb_generator *g = or_default(gen);
    gen_lock(g);
    gen_seed(g, seed);
    gen_unlock(g);
}

uint32_t nb_generator_random(nb_generator *gen)
{
    nb_generator *g = or_default(gen);
    gen_lock(g);
    uint32_t v = gen_u32(g);
    gen_unlock(g);
    return v;
}

nb_tensor *nb_rand(nb_shape shape)
{
    return sample("nb_rand", shape.ndim, shape.dims, default_generator(), standard_uniform);
}

nb_tensor *nb_rand_gen(nb_shape shape, nb_generator *gen)
{
    return sample("nb_rand_gen", shape.ndim, shape.dims, gen, standard_uniform);
}

nb_tensor *nb_randn(nb_shape shape)
{
    return sample("nb_randn", shape.ndim, shape.dims, default_generator(), standard_normal);
}

nb_tensor *nb_randn_gen(nb_shape shape, nb_generator *gen)
{
    return sample("nb_randn_gen", shape.ndim, shape.dims, gen, standard_normal);
}

static nb_tensor *randint(const char *fn, int64_t low, int64_t high, nb_shape shape,
                          nb_generator *gen)
{
    if (pick(&gen) != NB_OK) return NULL;
    if (check_int_range(fn, low, high) != NB_OK) return NULL;
    const dist k = {DIST_INT, 0.0, 0.0, low, high};
    return sample(fn, shape.ndim, shape.dims, gen, k);
}

nb_tensor *nb_randint(int64_t low, int64_t high, nb_shape shape)
{
    return randint("nb_randint", low, high, shape, default_generator());
}

nb_tensor *nb_randint_gen(int64_t low, int64_t high, nb_shape shape, nb_generator *gen)
{
    return randint("nb_randint_gen", low, high, shape, gen);
}

nb_tensor *nb_rand_like(const nb_tensor *t)
{
    if (!t) {
        nb__null("nb_rand_like", "t");
        return NULL;
    }
    return sample("nb_rand_like", nb_tensor_ndim(t), nb_tensor_shape(t), default_generator(),
                  standard_uniform);
}

nb_tensor *nb_randn_like(const nb_tensor *t)
{
    if (!t) {
        nb__null("nb_randn_like", "t");
        return NULL;
    }
    return sample("nb_randn_like", nb_tensor_ndim(t), nb_tensor_shape(t), default_generator(),
                  standard_normal);
}

/* Floats hold every integer up to 2^24 exactly; past it, indices would collide. */
#define RANDPERM_MAX (INT64_C(1) << 24)

nb_tensor *nb_randperm(int64_t n, nb_generator *gen)
{
    static const char fn[] = "nb_randperm";
    if (pick(&gen) != NB_OK) return NULL;
    if (n < 0) {
        nb__error(NB_EINVAL, fn, "n must be non-negative, got %lld", (long long)n);
        return NULL;
    }
    if (n > RANDPERM_MAX) {
        nb__error(NB_ERANGE, fn,
                  "n (%lld) is above 2^24 = %lld: float32 cannot hold every index exactly",
                  (long long)n, (long long)RANDPERM_MAX);
        return NULL;
    }
    int64_t *p = nb__alloc((size_t)(n > 0 ? n : 1) * sizeof *p, sizeof *p);
    if (!p) {
        nb__oom(fn);
        return NULL;
    }
    nb_tensor *t = nb__new(fn, 1, &n);
    if (t) {
        nb__randperm(gen, n, p);
        float *d = nb_tensor_data(t);
        for (int64_t i = 0; i < n; i++) d[i] = (float)p[i];
    }
    nb__free(p);
    return t;
}

nb_status nb_uniform_(nb_tensor *t, double from, double to, nb_generator *gen)
{
    static const char fn[] = "nb_uniform_";
    nb_status st = check_fill(fn, t, &gen);
    if (st != NB_OK) return st;
    if (!(from <= to)) return nb__error(NB_EINVAL, fn, "from (%g) > to (%g)", from, to);
    const float ffrom = (float)from, fto = (float)to;
    if (!isfinite(ffrom) || !isfinite(fto) || !isfinite(fto - ffrom))
        return nb__error(NB_EINVAL, fn, "[from, to) = [%g, %g) is not a finite float range", from,
                         to);
    const dist k = {DIST_UNIFORM, from, to, 0, 0};
    return sample_(t, gen, k);
}

nb_status nb_normal_(nb_tensor *t, double mean, double std, nb_generator *gen)
{
    static const char fn[] = "nb_normal_";
    nb_status st = check_fill(fn, t, &gen);
    if (st != NB_OK) return st;
    if (!(std >= 0.0)) return nb__error(NB_EINVAL, fn, "std (%g) must be >= 0", std);
    const dist k = {DIST_NORMAL, mean, std, 0, 0};
    return sample_(t, gen, k);
}

nb_status nb_random_(nb_tensor *t, int64_t low, int64_t high, nb_generator *gen)
{
    static const char fn[] = "nb_random_";
    nb_status st = check_fill(fn, t, &gen);
    if (st != NB_OK) return st;
    st = check_int_range(fn, low, high);
    if (st != NB_OK) return st;
    const dist k = {DIST_INT, 0.0, 0.0, low, high};
    return sample_(t, gen, k);
}
