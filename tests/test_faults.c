/*
 * Allocation failure across the whole job: nabla-train's training step (examples/trainer.c:
 * the batch from the loader, grads to None, Linear-ReLU-Linear, cross-entropy, backward,
 * Adam), a checkpoint of the model and the optimizer saved over an older one and loaded into
 * a fresh model and optimizer, and an IDX load from files, plain and gzip-compressed. For
 * every k, the k-th allocation fails, once and then (separately) every one from the k-th on:
 * the failing call reports NB_ENOMEM naming the public function called, nothing leaks, the
 * parameters and the optimizer's state are bit for bit those before the call or those of
 * the whole call, never a mix, and with memory back the run goes on exactly as a run that
 * never failed. k runs from 1 until the job needs fewer than k allocations.
 *
 * The safetensors functions on their own (every entry point, both modes) are swept in
 * test_safetensors.c, a save failing part-way through its writes in its
 * test_save_fsize_sweep; the loader's nb_dataloader_next in test_data.c.
 */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"
#include "trainer.h"

#define SIDE     4 /* 4x4 images */
#define IN       (SIDE * SIDE)
#define HIDDEN   8
#define CLASSES  3
#define COUNT    32
#define BATCH    8 /* 4 batches an epoch: a step swept, a retry, one more, and a resume */
#define N_PARAMS 4
#define MAX_REF  4

/* ---- the job: a small dataset, nabla-train's model, loader and optimizer ----------------- */

static void be32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

/* COUNT images of SIDE x SIDE bytes and their labels, as the two IDX files hold them. */
static unsigned char images_idx[16 + COUNT * IN], labels_idx[8 + COUNT];

static nb_dataset *make_dataset(void)
{
    be32(images_idx, 0x803);
    be32(images_idx + 4, COUNT);
    be32(images_idx + 8, SIDE);
    be32(images_idx + 12, SIDE);
    be32(labels_idx, 0x801);
    be32(labels_idx + 4, COUNT);
    for (int i = 0; i < COUNT; i++) {
        labels_idx[8 + i] = (unsigned char)(i % CLASSES);
        for (int j = 0; j < IN; j++)
            images_idx[16 + i * IN + j] =
                (unsigned char)((i * 37 + j * 11 + (i % CLASSES) * 60) % 256);
    }
    return nb_idx_load_memory(images_idx, sizeof images_idx, labels_idx, sizeof labels_idx);
}

typedef struct rig {
    nb_dataset *ds;
    nb_dataloader *dl;
    nb_module *model;
    nb_optim *opt;
    nb_tensor *x, *y; /* the epoch's batch tensors, made by its first batch */
    bool pending;     /* x, y hold a batch that no step has taken yet */
} rig;

/* What nabla-train sets up (trainer_model, Adam, a shuffling loader), small, from seed 0. */
static void rig_open(rig *r)
{
    memset(r, 0, sizeof *r);
    r->ds = make_dataset();
    assert_non_null(r->ds);
    nb_manual_seed(0);
    const int64_t hidden[] = {HIDDEN};
    r->model = trainer_model(IN, hidden, 1, CLASSES);
    assert_non_null(r->model);
    nb_tensor *p[N_PARAMS];
    assert_int_equal(nb_module_parameters(r->model, p, N_PARAMS), N_PARAMS);
    nb_optim_options o = nb_optim_defaults(NB_OPTIM_ADAM);
    o.lr = 1e-2;
    r->opt = nb_optim_new(p, N_PARAMS, &o);
    assert_non_null(r->opt);
    nb_dataloader_options lo = {.batch_size = BATCH, .shuffle = true};
    r->dl = nb_dataloader_new(r->ds, &lo);
    assert_non_null(r->dl);
    assert_int_equal(nb_dataloader_begin_epoch(r->dl), NB_OK);
}

static void rig_close(rig *r)
{
    nb_release(r->x);
    nb_release(r->y);
    nb_optim_free(r->opt);
    nb_module_free(r->model);
    nb_dataloader_free(r->dl);
    nb_dataset_free(r->ds);
}

/* The next batch as trainer_epoch takes it: into the epoch's tensors once they exist. */
static nb_status rig_batch(rig *r)
{
    int64_t b =
        r->x ? nb_dataloader_next_into(r->dl, r->x, r->y) : nb_dataloader_next(r->dl, &r->x, &r->y);
    if (b < 0) return (nb_status)b;
    assert_int_equal(b, BATCH);
    return NB_OK;
}

/* One step of trainer_epoch: the batch, then trainer_step on it. After a failed
 * trainer_step the batch it had is the next step's again. */
static nb_status rig_step(rig *r)
{
    double loss;
    nb_status rc = r->pending ? NB_OK : rig_batch(r);
    r->pending = rc == NB_OK;
    if (rc == NB_OK) rc = trainer_step(r->model, r->opt, r->x, r->y, &loss, NULL);
    if (rc == NB_OK) r->pending = false;
    return rc;
}

static void rig_steps(rig *r, int n)
{
    for (int i = 0; i < n; i++) {
        nb_status rc = rig_step(r);
        if (rc != NB_OK) fail_msg("step %d: %s", i + 1, nb_last_error()->message);
    }
}

/* ---- snapshots: the model's and the optimizer's state dicts as safetensors bytes --------- */

/* Every bit of the parameters (model) and of the optimizer's state: exp_avg, exp_avg_sq, the
 * step counts and the groups' hyperparameters. */
typedef struct snap {
    nbt_membuf model, optim;
} snap;

static nbt_membuf dict_bytes(const nb_module *m, const nb_optim *opt)
{
    nbt_membuf b = NBT_MEMBUF;
    nb_state_dict *d = nb_state_dict_new();
    assert_non_null(d);
    assert_int_equal(m ? nb_module_state_dict(m, d) : nb_optim_state_dict(opt, d), NB_OK);
    assert_int_equal(nb_safetensors_save_to(d, nbt_mem_write, &b), NB_OK);
    nb_state_dict_free(d);
    return b;
}

static snap take(const rig *r)
{
    return (snap){dict_bytes(r->model, NULL), dict_bytes(NULL, r->opt)};
}

static bool same(const nbt_membuf *a, const nbt_membuf *b)
{
    return a->len == b->len && !memcmp(a->data, b->data, a->len);
}

static void snap_free(snap *s)
{
    free(s->model.data);
    free(s->optim.data);
}

/* ref[j]: the state after j steps of a run that never fails. */
static snap ref[MAX_REF + 1];

static void make_refs(void)
{
    rig r;
    rig_open(&r);
    for (int j = 0; j <= MAX_REF; j++) {
        if (j) rig_steps(&r, 1);
        ref[j] = take(&r);
        if (j) assert_false(same(&ref[j].model, &ref[j - 1].model)); /* every step moves */
        if (j) assert_false(same(&ref[j].optim, &ref[j - 1].optim));
    }
    rig_close(&r);
}

static void free_refs(void)
{
    for (int j = 0; j <= MAX_REF; j++) snap_free(&ref[j]);
}

/* The index j of the reference state s is, among lo and hi (-1 when neither: a mix). */
static int which(const snap *s, int lo, int hi)
{
    if (same(&s->model, &ref[lo].model) && same(&s->optim, &ref[lo].optim)) return lo;
    if (same(&s->model, &ref[hi].model) && same(&s->optim, &ref[hi].optim)) return hi;
    return -1;
}

/* ---- the sweep's checks ---------------------------------------------------------------- */

static void fail_from(long k, bool from_k)
{
    if (from_k)
        nbt_fail_alloc_from(k);
    else
        nbt_fail_alloc_after(k);
    nb_error_clear();
}

/* The last error is NB_ENOMEM, "fn: out of memory", fn one of the n names in fns: its index. */
static int assert_oom(const char *what, long k, bool from_k, const char *const *fns, int n)
{
    const nb_error *e = nb_last_error();
    if (e->code != NB_ENOMEM)
        fail_msg("%s, k = %ld%s: %s (%s), want NB_ENOMEM", what, k, from_k ? " on" : "",
                 nb_status_name(e->code), e->message);
    for (int i = 0; i < n; i++) {
        size_t len = strlen(fns[i]);
        if (!strncmp(e->message, fns[i], len) && !strcmp(e->message + len, ": out of memory"))
            return i;
    }
    fail_msg("%s, k = %ld%s: \"%s\" does not name a function the job called", what, k,
             from_k ? " on" : "", e->message);
    return -1;
}

static void assert_no_leak(const char *what, long k, bool from_k, long live0)
{
    if (nbt_alloc_live() != live0)
        fail_msg("%s, k = %ld%s: %ld blocks leaked", what, k, from_k ? " on" : "",
                 nbt_alloc_live() - live0);
}

/* ---- the training step ----------------------------------------------------------------- */

/* The public functions a step calls (rig_batch's, trainer_step's), and the layers' ops,
 * whose errors nb_module_forward reports with their names (nn.h). */
static const char *const step_fns[] = {
    "nb_dataloader_next", "nb_dataloader_next_into",
    "nb_scope_begin",     "nb_optim_zero_grad",
    "nb_module_forward",  "nb_cross_entropy",
    "nb_backward",        "nb_optim_step",
    "nb_linear",          "nb_relu",
};
#define N_STEP_FNS ((int)(sizeof step_fns / sizeof step_fns[0]))

static int step_fn(const char *name)
{
    for (int i = 0; i < N_STEP_FNS; i++)
        if (!strcmp(step_fns[i], name)) return i;
    fail_msg("%s is not in step_fns", name);
    return -1;
}

/*
 * Step warm + 1 (after warm steps that succeed) with the k-th allocation failing; then,
 * memory back, the run goes on to warm + 2 steps and must be the reference's. Returns the
 * number of k swept, the allocations of the step plus one.
 */
static long sweep_step(int warm, bool from_k, unsigned *named)
{
    char what[64];
    snprintf(what, sizeof what, "step %d", warm + 1);
    long k;
    for (k = 1;; k++) {
        long live0 = nbt_alloc_live();
        rig r;
        rig_open(&r);
        rig_steps(&r, warm);
        fail_from(k, from_k);
        nb_status rc = rig_step(&r);
        bool failed = nbt_alloc_failed();
        nbt_fail_alloc_after(0);
        snap s = take(&r);
        int at = which(&s, warm, warm + 1);
        snap_free(&s);
        if (at < 0)
            fail_msg("%s, k = %ld%s (%s): parameters or optimizer state half-updated", what, k,
                     from_k ? " on" : "", rc == NB_OK ? "succeeded" : nb_last_error()->message);
        if (rc != NB_OK) {
            if (!failed)
                fail_msg("%s failed without a failed allocation: %s", what,
                         nb_last_error()->message);
            *named |= 1u << assert_oom(what, k, from_k, step_fns, N_STEP_FNS);
        } else {
            assert_int_equal(at, warm + 1); /* a step that succeeds did all of its work */
        }
        /* memory back: the step again if it failed, and one more, as if nothing happened */
        for (; at < warm + 2; at++) {
            rc = rig_step(&r);
            if (rc != NB_OK)
                fail_msg("%s, k = %ld%s: the step after it failed: %s", what, k,
                         from_k ? " on" : "", nb_last_error()->message);
        }
        s = take(&r);
        if (which(&s, warm + 2, warm + 2) < 0)
            fail_msg("%s, k = %ld%s: the run differs from the reference after it", what, k,
                     from_k ? " on" : "");
        snap_free(&s);
        rig_close(&r);
        assert_no_leak(what, k, from_k, live0);
        if (!failed) break;
    }
    return k;
}

/* The first step (which allocates Adam's state) and a warm one, in both modes. */
static void test_training_step(void **state)
{
    (void)state;
    make_refs();
    for (int warm = 0; warm < 2; warm++) {
        long n[2];
        unsigned named = 0;
        for (int from_k = 0; from_k < 2; from_k++) n[from_k] = sweep_step(warm, from_k, &named);
        assert_int_equal(n[0], n[1]); /* the same allocations, whichever mode */
        char names[256] = "";
        for (int i = 0; i < N_STEP_FNS; i++)
            if (named & (1u << i))
                snprintf(names + strlen(names), sizeof names - strlen(names), " %s", step_fns[i]);
        print_message("step %d: %ld allocations, k = 1..%ld in both modes; failures named%s\n",
                      warm + 1, n[0] - 1, n[0], names);
        /* every phase of the step ran out of memory somewhere: the batch (the first one
         * allocates its tensors), the forward, the loss, the backward, and the first
         * optimizer step (which allocates Adam's state; later ones allocate nothing) */
        const char *want[] = {"nb_linear", "nb_cross_entropy", "nb_backward",
                              warm ? "nb_linear" : "nb_dataloader_next",
                              warm ? "nb_linear" : "nb_optim_step"};
        for (int w = 0; w < 5; w++)
            if (!(named & 1u << step_fn(want[w])))
                fail_msg("step %d: no failure in %s", warm + 1, want[w]);
    }
    free_refs();
}

/* ---- the checkpoint: saved over an older one, loaded into a fresh model and optimizer ---- */

static char dir[256], path[320];

/* A fresh directory under $TMPDIR, else /dev/shm (the sweeps save some 900 checkpoints, each
 * synced to its file system), else /tmp. */
static void make_dir(void)
{
    const char *bases[] = {getenv("TMPDIR"), "/dev/shm", "/tmp"};
    bool made = false;
    for (int i = bases[0] ? 0 : 1; i < 3 && !made; i++) {
        snprintf(dir, sizeof dir, "%s/nb_faults_XXXXXX", bases[i]);
        made = mkdtemp(dir) != NULL;
    }
    if (!made) fail_msg("cannot make a temporary directory");
    snprintf(path, sizeof path, "%s/checkpoint.safetensors", dir);
}

/* dir holds the checkpoint only: no temporary file is left behind. */
static void assert_checkpoint_alone(void)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        if (strcmp(e->d_name, "checkpoint.safetensors")) fail_msg("%s left in %s", e->d_name, dir);
        n++;
    }
    closedir(d);
    assert_int_equal(n, 1);
}

/* The model's state dict and the optimizer's in one file, as a resumable checkpoint. */
static nb_status save_checkpoint(const rig *r, const char *to)
{
    nb_state_dict *d = nb_state_dict_new();
    nb_status rc = d ? nb_module_state_dict(r->model, d) : nb_last_error()->code;
    if (rc == NB_OK) rc = nb_optim_state_dict(r->opt, d);
    if (rc == NB_OK) rc = nb_state_dict_set_metadata(d, "format", "pt");
    if (rc == NB_OK) rc = nb_safetensors_save(d, to);
    nb_state_dict_free(d);
    return rc;
}

static const char *const save_fns[] = {"nb_state_dict_new", "nb_module_state_dict",
                                       "nb_optim_state_dict", "nb_state_dict_set_metadata",
                                       "nb_safetensors_save"};
static const char *const load_fns[] = {"nb_safetensors_load", "nb_module_load_state_dict",
                                       "nb_optim_load_state_dict"};

/* Saving the checkpoint of step 2 over that of step 1: the file is the old one or the new
 * one, whole, and alone. Returns the number of k swept. */
static long sweep_save(bool from_k, const unsigned char *old, size_t old_len,
                       const unsigned char *new, size_t new_len)
{
    long k;
    for (k = 1;; k++) {
        nbt_write_file(path, old, old_len);
        long live0 = nbt_alloc_live();
        rig r;
        rig_open(&r);
        rig_steps(&r, 2);
        fail_from(k, from_k);
        nb_status rc = save_checkpoint(&r, path);
        bool failed = nbt_alloc_failed();
        nbt_fail_alloc_after(0);
        size_t len;
        unsigned char *now = nbt_read_file(path, &len);
        if (rc != NB_OK) {
            assert_true(failed);
            assert_oom("save", k, from_k, save_fns, 5);
            if (len != old_len || memcmp(now, old, len))
                fail_msg("save, k = %ld%s: the old checkpoint was changed", k, from_k ? " on" : "");
        } else if (len != new_len || memcmp(now, new, len)) {
            fail_msg("save, k = %ld%s: succeeded but wrote another file", k, from_k ? " on" : "");
        }
        free(now);
        assert_checkpoint_alone();
        if (rc != NB_OK) { /* memory back: the save succeeds */
            assert_int_equal(save_checkpoint(&r, path), NB_OK);
            now = nbt_read_file(path, &len);
            assert_true(len == new_len && !memcmp(now, new, len));
            free(now);
            assert_checkpoint_alone();
        }
        rig_close(&r);
        assert_no_leak("save", k, from_k, live0);
        if (!failed) break;
    }
    return k;
}

/* Loading the checkpoint of step 2 into a fresh model and optimizer: each is untouched or
 * loaded whole; then (memory back, the load done) step 3 is the reference's step 3, as if
 * training had not stopped. Returns the number of k swept. */
static long sweep_load(bool from_k)
{
    long k;
    for (k = 1;; k++) {
        long live0 = nbt_alloc_live();
        rig r;
        rig_open(&r);
        fail_from(k, from_k);
        nb_state_dict *d = nb_safetensors_load(path);
        /* not strict: the optimizer's entries are in the same file */
        nb_status rc = d ? nb_module_load_state_dict(r.model, d, false) : nb_last_error()->code;
        if (rc == NB_OK) rc = nb_optim_load_state_dict(r.opt, d);
        nb_state_dict_free(d);
        bool failed = nbt_alloc_failed();
        nbt_fail_alloc_after(0);
        snap s = take(&r);
        bool model_old = same(&s.model, &ref[0].model), model_new = same(&s.model, &ref[2].model);
        bool optim_old = same(&s.optim, &ref[0].optim), optim_new = same(&s.optim, &ref[2].optim);
        snap_free(&s);
        if (!(model_old || model_new) || !(optim_old || optim_new))
            fail_msg("load, k = %ld%s: the %s half-loaded", k, from_k ? " on" : "",
                     model_old || model_new ? "optimizer" : "model");
        if (rc != NB_OK) {
            assert_true(failed);
            assert_oom("load", k, from_k, load_fns, 3);
            assert_false(optim_new);
            /* memory back: the load again */
            d = nb_safetensors_load(path);
            assert_non_null(d);
            assert_int_equal(nb_module_load_state_dict(r.model, d, false), NB_OK);
            assert_int_equal(nb_optim_load_state_dict(r.opt, d), NB_OK);
            nb_state_dict_free(d);
        } else {
            assert_true(model_new && optim_new);
        }
        /* the loader to where the checkpoint was taken, then the third step */
        for (int b = 0; b < 2; b++) assert_int_equal(rig_batch(&r), NB_OK);
        rig_steps(&r, 1);
        s = take(&r);
        if (which(&s, 3, 3) < 0)
            fail_msg("load, k = %ld%s: the resumed run differs from the reference", k,
                     from_k ? " on" : "");
        snap_free(&s);
        rig_close(&r);
        assert_no_leak("load", k, from_k, live0);
        if (!failed) break;
    }
    return k;
}

static void test_checkpoint(void **state)
{
    (void)state;
    make_refs();
    make_dir();
    char other[340];
    snprintf(other, sizeof other, "%s.new", dir);
    rig r;
    rig_open(&r);
    rig_steps(&r, 1);
    assert_int_equal(save_checkpoint(&r, path), NB_OK);
    rig_steps(&r, 1);
    assert_int_equal(save_checkpoint(&r, other), NB_OK);
    rig_close(&r);
    size_t old_len, new_len;
    unsigned char *old = nbt_read_file(path, &old_len), *new = nbt_read_file(other, &new_len);
    unlink(other);
    assert_false(old_len == new_len && !memcmp(old, new, old_len));
    long n[2][2];
    for (int from_k = 0; from_k < 2; from_k++)
        n[0][from_k] = sweep_save(from_k, old, old_len, new, new_len);
    /* the file is now the checkpoint of step 2 */
    for (int from_k = 0; from_k < 2; from_k++) n[1][from_k] = sweep_load(from_k);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(n[i][0], n[i][1]);
        assert_true(n[i][0] > 3);
        print_message("checkpoint %s: %ld allocations, k = 1..%ld in both modes\n",
                      i ? "load" : "save", n[i][0] - 1, n[i][0]);
    }
    unlink(path);
    rmdir(dir);
    free(old);
    free(new);
    free_refs();
}

/* ---- IDX files --------------------------------------------------------------------------- */

static long sweep_idx(const char *images, const char *labels, bool from_k)
{
    static const char *const fns[] = {"nb_idx_load"};
    long k;
    for (k = 1;; k++) {
        long live0 = nbt_alloc_live();
        fail_from(k, from_k);
        nb_dataset *ds = nb_idx_load(images, labels);
        bool failed = nbt_alloc_failed();
        nbt_fail_alloc_after(0);
        if (!ds) {
            assert_true(failed);
            assert_oom(images, k, from_k, fns, 1);
        } else {
            assert_int_equal(nb_dataset_count(ds), COUNT);
            assert_int_equal(nb_dataset_example_size(ds), IN);
            assert_int_equal(nb_dataset_num_classes(ds), CLASSES);
            assert_memory_equal(nb_dataset_images(ds), images_idx + 16, COUNT * IN);
            assert_memory_equal(nb_dataset_labels(ds), labels_idx + 8, COUNT);
        }
        nb_dataset_free(ds);
        assert_no_leak(images, k, from_k, live0);
        if (!failed) break;
    }
    return k;
}

static void test_idx_files(void **state)
{
    (void)state;
    make_dir();
    nb_dataset *ds = make_dataset();
    assert_non_null(ds);
    static const char *const ext[] = {"", ".gz"};
    for (int z = 0; z < 2; z++) {
        char images[400], labels[400];
        snprintf(images, sizeof images, "%s/images-idx3-ubyte%s", dir, ext[z]);
        snprintf(labels, sizeof labels, "%s/labels-idx1-ubyte%s", dir, ext[z]);
        assert_int_equal(nb_idx_save(ds, images, labels), NB_OK);
        long n[2];
        for (int from_k = 0; from_k < 2; from_k++) n[from_k] = sweep_idx(images, labels, from_k);
        assert_int_equal(n[0], n[1]);
        assert_true(n[0] > 2);
        print_message("nb_idx_load (%s): %ld allocations, k = 1..%ld in both modes\n",
                      z ? "gzip" : "plain", n[0] - 1, n[0]);
        unlink(images);
        unlink(labels);
    }
    nb_dataset_free(ds);
    rmdir(dir);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, nbt_setup_counting, nbt_teardown_counting)
    const struct CMUnitTest tests[] = {T(test_training_step), T(test_checkpoint),
                                       T(test_idx_files)};
#undef T
    return cmocka_run_group_tests_name("faults", tests, NULL, NULL);
}
