/*
 * What the op families share: broadcasting, the elementwise loop every elementwise op runs
 * on, reductions to a shape, and the helpers a backward writes its gradients with.
 */
#ifndef NABLA_OPS_INTERNAL_H
#define NABLA_OPS_INTERNAL_H

#include <math.h>
#include <string.h>

#include "autograd/internal.h"
#include "blas/blas.h"
#include "nabla/ops.h"
#include "ops/mathf.h"

/* ---- broadcasting ---------------------------------------------------------------------- */

/**
 * The broadcast shape of a and b into *out, or NB_ESHAPE recorded for fn:
 * "shapes [2, 3] and [4] cannot be broadcast (3 != 4 at dimension 1)".
 */
nb_status nb__broadcast_shape(const char *fn, const nb_shape *a, const nb_shape *b, nb_shape *out);
/**
 * Strides (in elements) that read a contiguous tensor of shape small as if it had shape big
 * (right-aligned; 0 where small is broadcast). small must broadcast to big.
 */
void nb__broadcast_strides(const nb_shape *small, const nb_shape *big, int64_t *strides);
/** Whether two shapes are equal. */
bool nb__shape_eq(const nb_shape *a, const nb_shape *b);

/* ---- the elementwise loop -------------------------------------------------------------- */

/** At most this many operands per elementwise kernel. */
#define NB__EW_MAX 4

/**
 * fn over items [0, items) of item_elems elements each: on the thread pool, in ranges of whole
 * items of about NB__TASK_ELEMS elements, when they hold NB__PARALLEL_MIN elements or more;
 * else in one call on the caller. The cut depends on the sizes alone.
 */
static inline void nb__split(int64_t items, int64_t item_elems, nb__range_fn fn, void *ctx)
{
    if (items * item_elems < NB__PARALLEL_MIN)
        fn(ctx, 0, items);
    else
        nb__parallel_ranges(items, (NB__TASK_ELEMS + item_elems - 1) / item_elems, fn, ctx);
}

/**
 * fn over items [0, items) for loops whose every output comes out the same whatever the cut
 * (a column's sum added row after row): one range per thread when they hold
 * NB__PARALLEL_MIN elements or more, else one call on the caller. Each range may sweep all of
 * the input, so a cut finer than the threads would only repeat that sweep.
 */
static inline void nb__split_per_thread(int64_t items, int64_t item_elems, nb__range_fn fn,
                                        void *ctx)
{
    int64_t t = items * item_elems < NB__PARALLEL_MIN ? 1 : nb__num_threads();
    nb__parallel_ranges(items, (items + t - 1) / t, fn, ctx);
}

/**
 * An elementwise kernel: o[i] = f(in[0][i·s[0]], in[1][i·s[1]], ...) for i < n, with k the
 * op's scalar parameters. Strides are 1 or 0 (an operand broadcast along the run); unused
 * operands have a NULL pointer, which the kernel never reads. Define kernels with
 * NB__EW_KERNEL.
 */
typedef void (*nb__ew_fn)(float *o, const float *const *in, const int64_t *s, int64_t n,
                          const float *k);

/* Operand i's value at element i of the run, inside NB__EW_KERNEL's expression. */
#define V0 P0_[i_ * S0_]
#define V1 P1_[i_ * S1_]
#define V2 P2_[i_ * S2_]
#define V3 P3_[i_ * S3_]

/**
 * Define kernel name computing o[i] = EXPR, where EXPR reads the operands as V0..V3 and the
 * scalars as k[0], k[1], ... The all-contiguous case gets its own loop, which the compiler
 * vectorises; nb__ew_run gives it a number operand (stride 0) as a contiguous run.
 */
#define NB__EW_KERNEL(name, EXPR)                                                                  \
    NB__CLONES static void name(float *o, const float *const *in, const int64_t *s, int64_t n,     \
                                const float *k)                                                    \
    {                                                                                              \
        const float *P0_ = in[0], *P1_ = in[1], *P2_ = in[2], *P3_ = in[3];                        \
        const int64_t S0_ = s[0], S1_ = s[1], S2_ = s[2], S3_ = s[3];                              \
        (void)P0_, (void)P1_, (void)P2_, (void)P3_, (void)k;                                       \
        if (S0_ == 1 && S1_ == 1 && S2_ == 1 && S3_ == 1) {                                        \
            for (int64_t i_ = 0; i_ < n; i_++) o[i_] = (EXPR);                                     \
        } else {                                                                                   \
            for (int64_t i_ = 0; i_ < n; i_++) o[i_] = (EXPR);                                     \
        }                                                                                          \
    }

/**
 * c ? a : b with both a and b evaluated: a kernel writes its choices with it so that no load
 * is conditional and the loop vectorises into compares and blends (a ternary that reads an
 * operand on one side only would stay a branch per element).
 */
static inline float nb__select(bool c, float a, float b)
{
    return c ? a : b;
}

/*
 * 8 floats, or 8 masks, as one value of GCC's and Clang's vector extension: an operation on
 * them compiles to one instruction in the AVX2 and AVX-512 copies (the baseline copy takes
 * them lane by lane). Loops whose scalar lanes GCC left as that many scalar chains (a
 * reduction into an array of lanes) are written with them. Macros, not functions: a function
 * that takes or returns such a value has an ABI that depends on the copy.
 */
typedef float nb__f8 __attribute__((vector_size(32)));
typedef int32_t nb__m8 __attribute__((vector_size(32)));
typedef uint64_t nb__q4 __attribute__((vector_size(32)));

/* v = x[0..8), from any alignment */
#define NB__LOAD8(v, x) memcpy(&(v), (x), sizeof(nb__f8))
/* the lanes of a where mask m is set, of b elsewhere */
#define NB__BLEND8(m, a, b) ((nb__f8)(((m) & (nb__m8)(a)) | (~(m) & (nb__m8)(b))))
/* whether any lane of the mask variable m is set */
#define NB__ANY8(m)                                                                                \
    (((((nb__q4)(m))[0] | ((nb__q4)(m))[1]) | (((nb__q4)(m))[2] | ((nb__q4)(m))[3])) != 0)

/**
 * The largest (smallest with min) of x[0..n), n >= 16, in 16 lanes of the greater (smaller)
 * value: a loop that vectorises. A NaN is passed over; *nan says whether there was one. Among
 * equal values it may keep a different one than a loop in order would (of +0 and -0, either).
 * Call it with min a constant.
 */
static inline __attribute__((always_inline)) float nb__lane_extreme(const float *x, int64_t n,
                                                                    bool min, bool *nan)
{
    enum { L = 16 };
    nb__f8 lo, hi, a, b;
    NB__LOAD8(lo, x);
    NB__LOAD8(hi, x + 8);
    nb__m8 seen = (lo != lo) | (hi != hi);
    int64_t k = L;
    for (; k + L <= n; k += L) {
        NB__LOAD8(a, x + k);
        NB__LOAD8(b, x + k + 8);
        seen |= (a != a) | (b != b);
        lo = NB__BLEND8(min ? a < lo : a > lo, a, lo);
        hi = NB__BLEND8(min ? b < hi : b > hi, b, hi);
    }
    float e = lo[0];
    for (int j = 1; j < L; j++) {
        float v = j < 8 ? lo[j] : hi[j - 8];
        e = nb__select(min ? v < e : v > e, v, e);
    }
    bool any = NB__ANY8(seen);
    for (; k < n; k++) {
        any |= x[k] != x[k];
        e = nb__select(min ? x[k] < e : x[k] > e, x[k], e);
    }
    *nan = any;
    return e;
}

/**
 * out[0..n) = f over operands p with strides s (1, or 0 for a number), added to out with acc.
 * A number among contiguous operands is given to f as a run of copies of it, in chunks, so
 * that f takes its contiguous loop: through the pointer to the number, which out might alias,
 * f's own loop stayed scalar (a comparison with a number 25 times slower). From
 * NB__PARALLEL_MIN elements, on the thread pool.
 */
void nb__ew_run(nb__ew_fn f, const float *k, float *out, bool acc, const float *const *p,
                const int64_t *s, int64_t n);

/** An operand of an elementwise loop: its data and its shape (broadcast to the output's). */
typedef struct nb__operand {
    const float *data; /* NULL: unused */
    const nb_shape *shape;
} nb__operand;

/**
 * out (of shape os) = f(operands) elementwise, or out += f(...) when acc. Each operand's
 * shape broadcasts to os. No allocation. From NB__PARALLEL_MIN elements, on the thread pool,
 * in whole rows.
 */
void nb__ew_apply(nb__ew_fn f, const float *k, float *out, bool acc, const nb_shape *os, int n,
                  const nb__operand *ops);
/** out = f(x) for tensors of one shape (a unary op's forward), k the scalars. */
void nb__ew_unary(nb__ew_fn f, const float *k, const nb_tensor *x, nb_tensor *out);

/* ---- reductions to a shape ------------------------------------------------------------- */

/**
 * dst (of shape s) = Σ of g over the dims where g is broadcast against s, times scale (or
 * dst += that, when acc): the backward of broadcasting. g's shape must broadcast from s.
 * From NB__PARALLEL_MIN elements of g it runs on the thread pool, split by outputs, each
 * added in the same order as on one thread; into one value, by nb__sum_chunks.
 */
void nb__sum_to(float *dst, const nb_shape *s, bool acc, const float *g, const nb_shape *gs,
                float scale);
/** The sum of x[0..n-1], accumulated in double (8 partial sums, added as a tree). */
double nb__sum_contiguous(const float *x, int64_t n);

/** The sum, in double, of the part [lo, hi) of the work described by ctx. */
typedef double (*nb__chunk_fn)(void *ctx, int64_t lo, int64_t hi);

/**
 * fn's sums over chunks of [0, n), added in order: one chunk on the caller below
 * NB__PARALLEL_MIN, else chunks of NB__TASK_ELEMS or more (a multiple of 64, at most 1024
 * chunks) on the thread pool. The chunks follow n alone: the same bits at any thread count.
 */
double nb__sum_chunks(int64_t n, nb__chunk_fn fn, void *ctx);

/** The sum of x[0..n-1] in double: nb__sum_contiguous over nb__sum_chunks's chunks. */
double nb__sum_all(const float *x, int64_t n);
/**
 * lp = log_softmax of each of rows rows of c contiguous values, as nb_log_softmax along the
 * last dim computes it (PyTorch's kernel: the max, the sum of e^(x − max) in 8 lanes reduced
 * as a tree, then (x − max) − log(sum)); on the pool for large inputs, the same bits at any
 * thread count. Rows of no value are not visited.
 */
void nb__log_softmax_rows(const float *x, float *lp, int64_t rows, int64_t c);

/* ---- recording and writing gradients ---------------------------------------------------- */

/**
 * Record op for the one output out of inputs in (see nb__record); on failure drop out and
 * return NULL. *node is the node, or NULL when none was needed.
 */
nb_tensor *nb__finish(const char *fn, const nb_op *op, nb_tensor *out, int n, nb_tensor *const *in,
                      nb_node **node);
/**
 * Where input i's gradient is written: the buffer the engine lent (*acc = true: add into
 * it) or a new tensor shaped like input i, left in gx[i] (*acc = false: overwrite it).
 * NULL on OOM, recorded for the engine's entry point.
 */
float *nb__grad_dst(nb_node *n, nb_tensor **gx, int i, bool *acc);
/**
 * gx[i] += scale·g summed to input i's shape (g's shape broadcasts from input i's); g is
 * borrowed. With scale 1 and nothing to sum or add to, gx[i] shares g.
 */
nb_status nb__grad_sum(nb_node *n, nb_tensor **gx, int i, const nb_tensor *g, float scale);
/** gx[i] += g for g shaped like input i, taking the reference g (NULL: the error of a failed
 * call that made it). */
nb_status nb__grad_take(nb_node *n, nb_tensor **gx, int i, nb_tensor *g);

/* ---- binary elementwise ops: one descriptor each ---------------------------------------- */

/* What a gradient kernel reads, besides the output's gradient: saved for backward. */
enum { NB__READ_A = 1, NB__READ_B = 2, NB__READ_OUT = 4 };

/**
 * A binary elementwise op y = f(a, b), broadcasting. node is its node (name and the shared
 * binary backward; first, so the node's op points at the descriptor). grad_a / grad_b
 * compute g·∂f/∂a and g·∂f/∂b from the operands (g, a, b, y) = (V0, V1, V2, V3); NULL means
 * the derivative is the constant sign_a / sign_b (add, sub). reads_a / reads_b say which of
 * a, b, y each reads, so the forward saves exactly those.
 */
typedef struct nb__binop {
    nb_op node;
    nb__ew_fn forward;
    nb__ew_fn grad_a, grad_b;
    unsigned reads_a, reads_b;
    float sign_a, sign_b;
} nb__binop;

/** A binary op node's state: b was the number scalar, not a tensor, when b_is_scalar. */
typedef struct nb__binop_state {
    float scalar;
    bool b_is_scalar;
} nb__binop_state;

/** The shared backward of every binary op (for its descriptor's node). */
nb_status nb__binop_backward(nb_node *n, nb_tensor *const *gy, nb_tensor **gx);
/** The node descriptor of a binary op: name, the shared backward, 3 saved, its state. */
#define NB__BINOP_NODE(name)                                                                       \
    {                                                                                              \
        name, nb__binop_backward, 3, sizeof(nb__binop_state), 0                                    \
    }
/** y = a op b for tensors (NULL with the error for fn), recording op's node. */
nb_tensor *nb__binary(const char *fn, const nb__binop *op, nb_tensor *a, nb_tensor *b);
/** y = a op s for a number s (b is a constant), recording op's node. */
nb_tensor *nb__binary_scalar(const char *fn, const nb__binop *op, nb_tensor *a, float s);
/** a ← a op b in place (b broadcast to a's shape, NULL b: the number s). */
nb_status nb__binary_(const char *fn, const nb__binop *op, nb_tensor *a, const nb_tensor *b,
                      float s);

/* ---- unary elementwise ops: one descriptor each ----------------------------------------- */

/** At most this many scalar parameters per unary op (a slope, a clamp's bounds, ...). */
#define NB__UNOP_K 4

/**
 * A unary elementwise op y = f(x; k) with scalar parameters k. forward reads V0 = x; grad
 * computes g·f'(x) from (g, x, y) = (V0, V1, V2), reading what reads says (NB__READ_A for x,
 * NB__READ_OUT for y), which the forward saves.
 */
typedef struct nb__unop {
    nb_op node;
    nb__ew_fn forward;
    nb__ew_fn grad;
    unsigned reads;
} nb__unop;

/** The shared backward of every unary op. */
nb_status nb__unop_backward(nb_node *n, nb_tensor *const *gy, nb_tensor **gx);
/** The node descriptor of a unary op: name, the shared backward, 2 saved, its scalars. */
#define NB__UNOP_NODE(name)                                                                        \
    {                                                                                              \
        name, nb__unop_backward, 2, sizeof(float) * NB__UNOP_K, 0                                  \
    }
/** y = f(x; k) with nk scalars in k (NULL when nk is 0), recording op's node. */
nb_tensor *nb__unary(const char *fn, const nb__unop *op, nb_tensor *x, const float *k, int nk);

/* ---- convolution ----------------------------------------------------------------------- */

/**
 * v[0], v[1] = the int-or-pair p (one value for both dims, or (h, w)), or false with fn's
 * error "expected <name> to be a single integer value or a list of 2 values<tail>, but got
 * <name>=<p>". For nb_conv2d and the Conv2d module's constructor.
 */
bool nb__conv_pair(const char *fn, const char *name, const char *tail, nb_shape p, int64_t *v);

/* ---- pooling --------------------------------------------------------------------------- */

/**
 * The checks of nb_max_pool2d (nb_avg_pool2d with avg: no dilation) that need no input, with
 * their messages for fn: each list's length and its values' range, stride, padding, kernel
 * and dilation as PyTorch's limits. For the pooling modules' constructors.
 */
nb_status nb__pool2d_check(const char *fn, nb_shape kernel, nb_shape stride, nb_shape padding,
                           nb_shape dilation, bool avg);

#endif /* NABLA_OPS_INTERNAL_H */
