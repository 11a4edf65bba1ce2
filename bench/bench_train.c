/*
 * bench-train — workloads W3 and T of docs/benchmarks.md: a training step of an MLP, and how
 * close it comes to the GEMMs it cannot avoid.
 *
 *   W3  X[256,784] → linear 512 → relu → linear 10 → cross_entropy(labels) → backward →
 *       SGD(lr 0.01)
 *   T   nabla-train's step: 784-256-128-10 ReLU MLP, Adam(lr 1e-3), batch 128, the batch made
 *       from bytes / 255 as the data loader makes it
 *
 * Both run trainer_step, the step of nabla-train (examples/trainer.c): zero the grads,
 * forward, cross-entropy, backward, optimizer step, scope end. The GEMM floor is the same
 * cblas_sgemm calls the step makes (forward y = x·Wᵀ + y per layer; backward dX = G·W for
 * every layer but the first, dW = Gᵀ·X for every layer), on preallocated buffers, with
 * OpenBLAS set to the same thread count (and told to let its idle threads sleep, which
 * leaves its time unchanged but stops them competing with nabla's pool: see
 * nbb_quiet_blas_threads). Floor and step are timed in alternation (pairs of
 * samples of ≥ 1 ms), and the ratio step / floor is the median of the pairs' ratios (with
 * its quartiles). A phase split (forward, backward, optimizer, teardown; medians over
 * single steps) and the number of allocations that reached the C library per warm step
 * (nb_alloc_stats) follow. Before timing, one step's gradients are checked against a direct
 * computation (the same GEMMs, the rest in double).
 *
 *   bench-train [--json] [--quick] [--threads 1,2] [--workloads W3,T] [--time SECONDS]
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>
#include <nabla/nabla.h>

#include "bench_util.h"
#include "trainer.h"

#define MAX_LAYERS    4
#define W3_TARGET     1.10
#define TOLERANCE     1e-4
#define PHASE_REPS    21
#define ALLOC_STEPS   10
#define CHECK_CLASSES 10

typedef struct workload {
    const char *id;
    int64_t batch;
    int n_layers; /* linear layers */
    int64_t dims[MAX_LAYERS + 1];
    nb_optim_kind optim;
    double lr;
    double target; /* ratio step / floor to meet, or 0 */
} workload;

static const workload workloads[] = {
    {"W3", 256, 2, {784, 512, 10}, NB_OPTIM_SGD, 0.01, W3_TARGET},
    {"T", 128, 3, {784, 256, 128, 10}, NB_OPTIM_ADAM, 1e-3, 0.0},
};
#define N_WORKLOADS (sizeof workloads / sizeof workloads[0])

typedef struct mlp_ctx {
    const workload *w;
    int threads;
    nb_module *model;
    nb_optim *opt;
    nb_tensor *x, *y;
    nb_tensor *params[2 * MAX_LAYERS]; /* weight, bias per layer */
    /* the floor's buffers: activations (input of each layer), gradients, weight grads */
    float *act[MAX_LAYERS + 1], *grad[MAX_LAYERS + 1], *dw[MAX_LAYERS];
    bool failed;
} mlp_ctx;

static void report_nabla_error(const char *what)
{
    fprintf(stderr, "bench-train: %s: %s\n", what, nb_last_error()->message);
}

static void mlp_step(void *p)
{
    mlp_ctx *c = p;
    double loss;
    if (trainer_step(c->model, c->opt, c->x, c->y, &loss, NULL) != NB_OK && !c->failed) {
        report_nabla_error(c->w->id);
        c->failed = true;
    }
}

static CBLAS_TRANSPOSE tr(bool t)
{
    return t ? CblasTrans : CblasNoTrans;
}

static void gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const float *a, const float *b,
                 float beta, float *c)
{
    cblas_sgemm(CblasRowMajor, tr(ta), tr(tb), (int)m, (int)n, (int)k, 1.0f, a, (int)(ta ? m : k),
                b, (int)(tb ? k : n), beta, c, (int)n);
}

/* The step's GEMMs alone, with OpenBLAS at the step's thread count. */
static void mlp_floor(void *p)
{
    const mlp_ctx *c = p;
    const workload *w = c->w;
    int saved = nbb_blas_threads(c->threads);
    int64_t B = w->batch;
    for (int l = 0; l < w->n_layers; l++) /* y = x·Wᵀ + y, y holding the bias */
        gemm(false, true, B, w->dims[l + 1], w->dims[l], c->act[l],
             nb_tensor_data_const(c->params[2 * l]), 1.0f, c->act[l + 1]);
    for (int l = w->n_layers - 1; l >= 0; l--) {
        if (l > 0) /* dX = G·W */
            gemm(false, false, B, w->dims[l], w->dims[l + 1], c->grad[l + 1],
                 nb_tensor_data_const(c->params[2 * l]), 0.0f, c->grad[l]);
        /* dW = Gᵀ·X */
        gemm(true, false, w->dims[l + 1], w->dims[l], B, c->grad[l + 1], c->act[l], 0.0f, c->dw[l]);
    }
    nbb_blas_threads(saved);
}

static double max_rel_err(const float *got, const double *ref, int64_t n)
{
    double diff = 0.0, scale = 0.0;
    for (int64_t i = 0; i < n; i++) {
        diff = fmax(diff, fabs((double)got[i] - ref[i]));
        scale = fmax(scale, fabs(ref[i]));
    }
    return scale > 0.0 ? diff / scale : diff;
}

/*
 * One step, then its gradients against a direct computation from the parameters before it:
 * the GEMMs through cblas_sgemm into the floor's buffers, bias, relu, softmax and the column
 * sums in double. The largest normwise error over every parameter's gradient.
 */
static double mlp_check(mlp_ctx *c)
{
    const workload *w = c->w;
    int L = w->n_layers;
    int64_t B = w->batch;
    float *before[2 * MAX_LAYERS] = {NULL};
    double *ref = NULL, err = (double)INFINITY;
    for (int i = 0; i < 2 * L; i++) {
        size_t n = (size_t)nb_tensor_numel(c->params[i]);
        if (!(before[i] = malloc(n * sizeof(float)))) goto done;
        memcpy(before[i], nb_tensor_data_const(c->params[i]), n * sizeof(float));
    }
    mlp_step(c);
    if (c->failed) goto done;
    size_t most = 0;
    for (int l = 0; l < L; l++) {
        size_t n = (size_t)(w->dims[l] * w->dims[l + 1]);
        most = n > most ? n : most;
    }
    if (!(ref = malloc(most * sizeof *ref))) goto done;
    /* forward */
    for (int l = 0; l < L; l++) {
        int64_t n = w->dims[l + 1];
        float *y = c->act[l + 1];
        for (int64_t i = 0; i < B; i++)
            for (int64_t j = 0; j < n; j++) y[i * n + j] = before[2 * l + 1][j];
        gemm(false, true, B, n, w->dims[l], c->act[l], before[2 * l], 1.0f, y);
        if (l < L - 1)
            for (int64_t i = 0; i < B * n; i++) y[i] = y[i] > 0.0f ? y[i] : 0.0f;
    }
    /* d loss / d logits = (softmax − onehot) / B */
    int64_t C = w->dims[L];
    const float *labels = nb_tensor_data_const(c->y);
    for (int64_t i = 0; i < B; i++) {
        const float *z = c->act[L] + i * C;
        double mx = z[0], sum = 0.0;
        for (int64_t j = 1; j < C; j++) mx = fmax(mx, (double)z[j]);
        for (int64_t j = 0; j < C; j++) sum += exp((double)z[j] - mx);
        for (int64_t j = 0; j < C; j++)
            c->grad[L][i * C + j] =
                (float)((exp((double)z[j] - mx) / sum - (j == (int64_t)labels[i] ? 1.0 : 0.0)) /
                        (double)B);
    }
    err = 0.0;
    for (int l = L - 1; l >= 0; l--) {
        int64_t n = w->dims[l + 1], k = w->dims[l];
        const float *g = c->grad[l + 1];
        gemm(true, false, n, k, B, g, c->act[l], 0.0f, c->dw[l]);
        for (int64_t i = 0; i < n * k; i++) ref[i] = (double)c->dw[l][i];
        err = fmax(err,
                   max_rel_err(nb_tensor_data_const(nb_tensor_grad(c->params[2 * l])), ref, n * k));
        for (int64_t j = 0; j < n; j++) {
            double s = 0.0;
            for (int64_t i = 0; i < B; i++) s += (double)g[i * n + j];
            ref[j] = s;
        }
        err = fmax(err,
                   max_rel_err(nb_tensor_data_const(nb_tensor_grad(c->params[2 * l + 1])), ref, n));
        if (l > 0) {
            gemm(false, false, B, k, n, g, before[2 * l], 0.0f, c->grad[l]);
            for (int64_t i = 0; i < B * k; i++)
                if (!(c->act[l][i] > 0.0f)) c->grad[l][i] = 0.0f;
        }
    }
done:
    for (int i = 0; i < 2 * L; i++) free(before[i]);
    free(ref);
    return err;
}

static void mlp_free(mlp_ctx *c)
{
    nb_optim_free(c->opt);
    nb_module_free(c->model);
    nb_release(c->x);
    nb_release(c->y);
    for (int l = 0; l <= MAX_LAYERS; l++) {
        free(c->act[l]);
        free(c->grad[l]);
    }
    for (int l = 0; l < MAX_LAYERS; l++) free(c->dw[l]);
}

static bool mlp_init(mlp_ctx *c, const workload *w, int threads)
{
    memset(c, 0, sizeof *c);
    c->w = w;
    c->threads = threads;
    int L = w->n_layers;
    int64_t B = w->batch;
    nb_manual_seed(0);
    c->model = trainer_model(w->dims[0], w->dims + 1, L - 1, w->dims[L]);
    if (!c->model || nb_module_parameters(c->model, c->params, 2 * MAX_LAYERS) != 2 * L) {
        report_nabla_error("model");
        return false;
    }
    nb_optim_options o = nb_optim_defaults(w->optim);
    o.lr = w->lr;
    c->opt = nb_optim_new(c->params, 2 * L, &o);
    c->x = nb_empty(NB_SHAPE(B, w->dims[0]));
    c->y = nb_empty(NB_SHAPE(B));
    if (!c->opt || !c->x || !c->y) {
        report_nabla_error("setup");
        return false;
    }
    /* pixels: bytes / 255 as the loader makes them, from a fixed stream */
    uint64_t state = 7;
    float *x = nb_tensor_data(c->x), *y = nb_tensor_data(c->y);
    nbb_fill_uniform(x, (size_t)(B * w->dims[0]), &state);
    for (int64_t i = 0; i < B * w->dims[0]; i++) x[i] = floorf((x[i] + 1.0f) * 128.0f) / 255.0f;
    nbb_fill_uniform(y, (size_t)B, &state);
    for (int64_t i = 0; i < B; i++) y[i] = floorf((y[i] + 1.0f) * 0.5f * (float)CHECK_CLASSES);
    nb_tensor_bump_version(c->x);
    nb_tensor_bump_version(c->y);
    for (int l = 0; l <= L; l++) {
        size_t n = (size_t)(B * w->dims[l]);
        c->act[l] = malloc(n * sizeof(float));
        c->grad[l] = malloc(n * sizeof(float));
        if (!c->act[l] || !c->grad[l]) return false;
        nbb_fill_uniform(c->grad[l], n, &state);
    }
    memcpy(c->act[0], x, (size_t)(B * w->dims[0]) * sizeof(float));
    for (int l = 0; l < L; l++)
        if (!(c->dw[l] = malloc((size_t)(w->dims[l] * w->dims[l + 1]) * sizeof(float))))
            return false;
    return true;
}

/* Medians over single steps of each phase. */
static trainer_phases mlp_phases(mlp_ctx *c, int reps)
{
    double v[4][PHASE_REPS];
    if (reps > PHASE_REPS) reps = PHASE_REPS;
    for (int r = 0; r < reps; r++) {
        trainer_phases t;
        double loss;
        if (trainer_step(c->model, c->opt, c->x, c->y, &loss, &t) != NB_OK) c->failed = true;
        v[0][r] = t.forward;
        v[1][r] = t.backward;
        v[2][r] = t.optimizer;
        v[3][r] = t.teardown;
    }
    size_t n = (size_t)reps;
    return (trainer_phases){nbb_median(v[0], n), nbb_median(v[1], n), nbb_median(v[2], n),
                            nbb_median(v[3], n)};
}

/* Allocations that reached the C library per step, over ALLOC_STEPS warm steps. */
static double mlp_system_allocs(mlp_ctx *c)
{
    nb_alloc_stats a, b;
    nb_alloc_stats_get(&a);
    for (int i = 0; i < ALLOC_STEPS; i++) mlp_step(c);
    nb_alloc_stats_get(&b);
    return (double)(b.system_allocs - a.system_allocs) / ALLOC_STEPS;
}

static void print_header(const nbb_options *opt)
{
    if (opt->json) return;
    printf("bench-train: trainer_step against its GEMMs (the same cblas_sgemm calls, OpenBLAS at "
           "the same\nthread count), timed in alternation; ratio = median over pairs of "
           "t_step / t_floor [quartiles].\nPhases: medians over single steps. sys allocs: "
           "calls that reached the C library per warm step.\n");
    printf("%-3s %7s %6s %9s %9s %7s %-15s %7s  %-31s %6s %9s\n", "", "threads", "pairs", "step ms",
           "floor ms", "ratio", "[q1, q3]", "target", "fwd / bwd / opt / teardown ms", "sys",
           "max err");
}

static void print_row(const nbb_options *opt, const mlp_ctx *c, const nbb_pair_timing *t,
                      const trainer_phases *ph, double allocs, double err)
{
    const workload *w = c->w;
    /* the pair is (floor, step): report the median of step / floor */
    double ratio = t->ratio_ba, q1 = t->ratio_ba_q1, q3 = t->ratio_ba_q3;
    bool met = w->target > 0 && ratio <= w->target;
    if (opt->json) {
        NBB_JSON_ROW(stdout, NBB_STR("workload", w->id), NBB_INT("threads", c->threads),
                     NBB_INT("batch", w->batch), NBB_INT("pairs", t->pairs),
                     NBB_NUM("step_median_s", t->b_s), NBB_NUM("floor_median_s", t->a_s),
                     NBB_NUM("ratio", ratio), NBB_NUM("ratio_q1", q1), NBB_NUM("ratio_q3", q3),
                     w->target > 0 ? NBB_NUM("target_ratio", w->target) : NBB_NULL("target_ratio"),
                     NBB_BOOL("meets_target", met), NBB_NUM("forward_median_s", ph->forward),
                     NBB_NUM("backward_median_s", ph->backward),
                     NBB_NUM("optimizer_median_s", ph->optimizer),
                     NBB_NUM("teardown_median_s", ph->teardown),
                     NBB_NUM("system_allocs_per_step", allocs), NBB_NUM("max_rel_err", err));
        return;
    }
    char q[32], phases[64];
    snprintf(q, sizeof q, "[%.3f, %.3f]", q1, q3);
    snprintf(phases, sizeof phases, "%.3f / %.3f / %.3f / %.3f", ph->forward * 1e3,
             ph->backward * 1e3, ph->optimizer * 1e3, ph->teardown * 1e3);
    printf("%-3s %7d %6d %9.3f %9.3f %7.3f %-15s %7s  %-31s %6.1f %9.2e\n", w->id, c->threads,
           t->pairs, t->b_s * 1e3, t->a_s * 1e3, ratio, q,
           w->target > 0 ? (met ? "met" : "MISSED") : "-", phases, allocs, err);
}

static bool run_workload(const nbb_options *opt, const workload *w, int threads, double time_s)
{
    mlp_ctx c;
    bool ok = mlp_init(&c, w, threads);
    double err = ok ? mlp_check(&c) : (double)INFINITY;
    if (ok && !(err <= TOLERANCE)) {
        fprintf(stderr, "bench-train: %s gradients differ from the direct computation: %.3g\n",
                w->id, err);
        ok = false;
    }
    if (ok) {
        nbb_pair_timing t = nbb_measure_pair(mlp_floor, mlp_step, &c, time_s, opt->quick ? 3 : 11);
        trainer_phases ph = mlp_phases(&c, opt->quick ? 3 : PHASE_REPS);
        double allocs = mlp_system_allocs(&c);
        ok = !c.failed && t.pairs > 0;
        print_row(opt, &c, &t, &ph, allocs, err);
    }
    mlp_free(&c);
    fflush(stdout);
    return ok;
}

static void usage(void)
{
    printf("usage: bench-train [options]\n"
           "  --workloads LIST   W3, T (default W3,T)\n"
           "  --time SECONDS     time per workload and thread count (default 3; quick 0.05)\n");
    nbb_print_usage(stdout);
}

int main(int argc, char **argv)
{
    nbb_quiet_blas_threads(argv);
    nbb_options opt;
    int rc = nbb_start(&argc, argv, &opt, usage);
    if (rc >= 0) return rc;
    bool run[N_WORKLOADS];
    for (size_t i = 0; i < N_WORKLOADS; i++) run[i] = true;
    double time_s = opt.quick ? 0.05 : 3.0;
    for (int i = 1; i < argc; i++) {
        bool missing = false;
        const char *v;
        if ((v = nbb_flag_value(argc, argv, &i, "--time", &missing))) {
            char *end;
            time_s = strtod(v, &end);
            if (*end != '\0' || !(time_s >= 0.0)) {
                fprintf(stderr, "--time: expected a number of seconds, got '%s'\n", v);
                return 2;
            }
        } else if ((v = nbb_flag_value(argc, argv, &i, "--workloads", &missing))) {
            for (size_t k = 0; k < N_WORKLOADS; k++) run[k] = false;
            char list[64];
            snprintf(list, sizeof list, "%s", v);
            for (char *tok = strtok(list, ","); tok; tok = strtok(NULL, ",")) {
                size_t k = 0;
                while (k < N_WORKLOADS && strcmp(tok, workloads[k].id) != 0) k++;
                if (k == N_WORKLOADS) {
                    fprintf(stderr, "--workloads: unknown workload '%s' (W3, T)\n", tok);
                    return 2;
                }
                run[k] = true;
            }
        } else {
            if (!missing)
                fprintf(stderr, "bench-train: unknown option '%s' (try --help)\n", argv[i]);
            return 2;
        }
    }
    print_header(&opt);
    bool ok = true;
    for (size_t k = 0; k < N_WORKLOADS; k++) {
        if (!run[k]) continue;
        for (size_t t = 0; t < opt.n_threads; t++) {
            if (nb_set_num_threads(opt.threads[t]) != NB_OK) {
                report_nabla_error("nb_set_num_threads");
                return 1;
            }
            if (!run_workload(&opt, &workloads[k], opt.threads[t], time_s)) ok = false;
        }
    }
    return ok ? 0 : 1;
}
