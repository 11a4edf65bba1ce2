/*
 * The data loader: PyTorch 1.13's single-process DataLoader over a map-style dataset, with
 * its draws from the generators made at the same moments (data.h says when), so a seeded
 * run sees PyTorch's batches and leaves the generators where PyTorch leaves them.
 *
 * A batch is converted with ToTensor's (and Normalize's) float operations on each byte, in
 * a loop that vectorises (a 256-entry table of the same values, read per byte, is a gather
 * the compiler keeps scalar: 6% of nabla-train's epoch).
 */
#include <math.h>
#include <string.h>

#include "core/internal.h"
#include "core/rng.h"
#include "data/internal.h"

typedef enum epoch_state {
    EPOCH_NONE,    /* no epoch has begun */
    EPOCH_RUNNING, /* batches may follow */
    EPOCH_DONE,    /* the sampler has run out: every later call returns 0 */
} epoch_state;

struct nb_dataloader {
    const nb_dataset *ds;
    nb_dataloader_options o;
    int64_t *order;    /* the epoch's dataset indices */
    int64_t order_cap; /* entries order has room for */
    int64_t *sampler;  /* an order set with nb_dataloader_set_order, or NULL */
    int64_t sampler_n;
    int64_t epoch_n;     /* the running epoch's number of indices */
    nb_generator *fresh; /* RandomSampler's own generator, reseeded each epoch */
    epoch_state state;
    bool started;        /* the sampler has drawn this epoch's order */
    int64_t pos;         /* indices of the order taken so far */
    int64_t batch_start; /* the batch last returned: order[batch_start .. + batch_n] */
    int64_t batch_n;
};

static nb_status check_options(const char *fn, const nb_dataset *ds, const nb_dataloader_options *o)
{
    if (o->batch_size < 1)
        return nb__error(NB_EINVAL, fn, "batch_size must be at least 1, got %lld",
                         (long long)o->batch_size);
    if (o->shuffle && ds->count == 0)
        return nb__error(NB_EINVAL, fn,
                         "cannot shuffle an empty dataset (PyTorch: "
                         "num_samples should be a positive integer value)");
    if (o->normalize && (!isfinite(o->mean) || !isfinite(o->std) || o->std == 0.0f))
        return nb__error(NB_EINVAL, fn,
                         "normalize needs a finite mean and a finite, non-zero std, got mean "
                         "%g, std %g",
                         (double)o->mean, (double)o->std);
    return NB_OK;
}

nb_dataloader *nb_dataloader_new(const nb_dataset *ds, const nb_dataloader_options *options)
{
    static const char fn[] = "nb_dataloader_new";
    if (!ds) {
        nb__null(fn, "ds");
        return NULL;
    }
    nb_dataloader_options o = {.batch_size = 1};
    if (options) o = *options;
    if (options && !o.generator && nb__pending() != NB_OK) return NULL; /* a failed generator */
    if (check_options(fn, ds, &o) != NB_OK) return NULL;

    nb_dataloader *dl = nb__calloc(sizeof *dl);
    if (!dl) goto oom;
    dl->ds = ds;
    dl->o = o;
    dl->order_cap = ds->count ? ds->count : 1;
    dl->order = nb__alloc((size_t)dl->order_cap * sizeof *dl->order, NB__ALIGN);
    if (!dl->order) goto oom;
    if (o.shuffle && !o.generator) {
        dl->fresh = nb_generator_new(0);
        if (!dl->fresh) goto oom;
    }
    for (int64_t i = 0; i < ds->count; i++) dl->order[i] = i;
    return dl;
oom:
    nb_dataloader_free(dl);
    nb__oom(fn);
    return NULL;
}

void nb_dataloader_free(nb_dataloader *dl)
{
    if (!dl) return;
    nb_generator_free(dl->fresh);
    nb__free(dl->sampler);
    nb__free(dl->order);
    nb__free(dl);
}

int64_t nb_dataloader_num_batches(const nb_dataloader *dl)
{
    if (!dl) return -1;
    const int64_t n = dl->sampler ? dl->sampler_n : dl->ds->count, b = dl->o.batch_size;
    return dl->o.drop_last ? n / b : n / b + (n % b != 0);
}

nb_status nb_dataloader_begin_epoch(nb_dataloader *dl)
{
    if (!dl) return nb__null("nb_dataloader_begin_epoch", "dl");
    /* _BaseDataLoaderIter's _base_seed (for workers, which nabla has none of): drawn and
       dropped, so that the generator moves on as PyTorch's does */
    (void)nb__generator_random64(dl->o.generator);
    dl->state = EPOCH_RUNNING;
    dl->epoch_n = dl->ds->count;
    if (dl->sampler) {
        /* a sampler's list draws nothing: the epoch's order is known now */
        dl->epoch_n = dl->sampler_n;
        memcpy(dl->order, dl->sampler, (size_t)dl->sampler_n * sizeof *dl->order);
    }
    dl->started = false;
    dl->pos = 0;
    dl->batch_start = 0;
    dl->batch_n = 0;
    return NB_OK;
}

nb_status nb_dataloader_set_order(nb_dataloader *dl, const int64_t *indices, int64_t n)
{
    static const char fn[] = "nb_dataloader_set_order";
    if (!dl) return nb__null(fn, "dl");
    if (n < 0) return nb__error(NB_EINVAL, fn, "n must be non-negative, got %lld", (long long)n);
    if (!indices && n > 0) return nb__error(NB_EINVAL, fn, "argument 'indices' is NULL");
    if (dl->o.shuffle)
        return nb__error(NB_EINVAL, fn,
                         "an explicit order and shuffle exclude each other (PyTorch: sampler "
                         "option is mutually exclusive with shuffle)");
    for (int64_t i = 0; i < n; i++)
        if (indices[i] < 0 || indices[i] >= dl->ds->count)
            return nb__error(NB_ERANGE, fn, "indices[%lld] = %lld is outside [0, %lld)",
                             (long long)i, (long long)indices[i], (long long)dl->ds->count);
    if ((uint64_t)n > SIZE_MAX / 2 / sizeof *indices) return nb__oom(fn);
    /* both buffers first, so that a failure leaves the loader as it was; a running epoch
       keeps reading its own order, so a bigger one takes over what it holds */
    const size_t bytes = (size_t)(n ? n : 1) * sizeof *indices;
    int64_t *list = nb__alloc(bytes, NB__ALIGN);
    int64_t *order = NULL;
    if (list && n > dl->order_cap) order = nb__alloc(bytes, NB__ALIGN);
    if (!list || (n > dl->order_cap && !order)) {
        nb__free(list);
        return nb__oom(fn);
    }
    if (n) memcpy(list, indices, (size_t)n * sizeof *indices);
    if (order) {
        memcpy(order, dl->order, (size_t)dl->order_cap * sizeof *order);
        nb__free(dl->order);
        dl->order = order;
        dl->order_cap = n;
    }
    nb__free(dl->sampler);
    dl->sampler = list;
    dl->sampler_n = n;
    return NB_OK;
}

/* The size of the epoch's next batch (0: none is left), changing nothing. */
static int64_t peek(const nb_dataloader *dl)
{
    if (dl->state != EPOCH_RUNNING) return 0;
    const int64_t left = dl->epoch_n - dl->pos;
    if (left >= dl->o.batch_size) return dl->o.batch_size;
    return dl->o.drop_last ? 0 : left;
}

/* RandomSampler.__iter__ up to its first index: the epoch's order. */
static void draw_order(nb_dataloader *dl)
{
    const int64_t n = dl->ds->count;
    /* SequentialSampler (0 .. n-1) and a sampler's list were in place already */
    if (!dl->o.shuffle) return;
    if (dl->o.generator) {
        nb__randperm(dl->o.generator, n, dl->order);
    } else {
        uint64_t seed = nb__generator_random64(NULL) % (UINT64_C(1) << 63);
        nb_generator_seed(dl->fresh, seed);
        nb__randperm(dl->fresh, n, dl->order);
    }
}

/*
 * Take the b examples peek announced, drawing what PyTorch's samplers draw on the way: the
 * order at the first index, and, once an index is asked for past the last (which happens
 * whenever fewer than batch_size are left), the one more randperm RandomSampler's loop
 * makes; from a fresh generator that one changes nothing, so only a given one draws it.
 */
static void take(nb_dataloader *dl, int64_t b)
{
    if (dl->state != EPOCH_RUNNING) {
        dl->batch_n = 0;
        return;
    }
    if (!dl->started) {
        draw_order(dl);
        dl->started = true;
    }
    if (dl->epoch_n - dl->pos < dl->o.batch_size) {
        if (dl->o.shuffle && dl->o.generator) nb__randperm(dl->o.generator, dl->ds->count, NULL);
        dl->state = EPOCH_DONE;
    }
    dl->batch_start = dl->pos;
    dl->batch_n = b;
    dl->pos += b;
}

/*
 * k / 255 for a byte k, without the divider (a vector division per 8-10 cycles bounded the
 * conversion): q = k·r for r = 1/255 in float, then one correction by the remainder (exact
 * in a fused multiply-add), Markstein's. That is the division's bits for each of the 256
 * bytes (test_batch_values compares every byte value with PyTorch's), not for every float.
 * 22.4-23.0 -> 17.0-18.8 us for a shuffled batch of 128 Fashion-MNIST images (Intel Xeon).
 */
static inline float byte_over_255(uint8_t k)
{
    const float x = (float)k, r = 1.0f / 255.0f;
    const float q = x * r;
    const float e = fmaf(-q, 255.0f, x);
    return fmaf(e, r, q);
}

/* ToTensor: byte -> float, divided by 255; then Normalize: (x - mean) / std. */
NB__CLONES static void to_float(const uint8_t *restrict src, float *restrict dst, int64_t n,
                                bool normalize, float mean, float std)
{
    if (!normalize) {
        for (int64_t j = 0; j < n; j++) dst[j] = byte_over_255(src[j]);
        return;
    }
    for (int64_t j = 0; j < n; j++) dst[j] = (byte_over_255(src[j]) - mean) / std;
}

/* The batch last taken into x [batch_n, example_size] and y [batch_n]. */
static void convert(const nb_dataloader *dl, float *x, float *y)
{
    const nb_dataset *ds = dl->ds;
    const int64_t d = ds->example_size;
    const int64_t *idx = dl->order + dl->batch_start;
    /* Shuffled rows: each is fetched AHEAD rows before it is read, as the hardware cannot
     * guess the next one (60 -> 24 us for a batch of 128 Fashion-MNIST images). */
    enum { AHEAD = 4 };
    for (int64_t r = -AHEAD; r < dl->batch_n; r++) {
        if (r + AHEAD < dl->batch_n) {
            const char *next = (const char *)(ds->images + idx[r + AHEAD] * d);
            for (int64_t k = 0; k < d; k += 64) __builtin_prefetch(next + k);
        }
        if (r < 0) continue;
        to_float(ds->images + idx[r] * d, x + r * d, d, dl->o.normalize, dl->o.mean, dl->o.std);
        y[r] = (float)ds->labels[idx[r]];
    }
}

/* The checks both forms of next make first. */
static nb_status check_next(const char *fn, const nb_dataloader *dl)
{
    if (!dl) return nb__null(fn, "dl");
    if (dl->state == EPOCH_NONE)
        return nb__error(NB_ESTATE, fn,
                         "no epoch is running: call nb_dataloader_begin_epoch first");
    return NB_OK;
}

int64_t nb_dataloader_next(nb_dataloader *dl, nb_tensor **images, nb_tensor **labels)
{
    static const char fn[] = "nb_dataloader_next";
    if (images) *images = NULL; /* NULL on every error, also when the other one is NULL */
    if (labels) *labels = NULL;
    if (!images || !labels)
        return nb__error(NB_EINVAL, fn, "argument '%s' is NULL", images ? "labels" : "images");
    nb_status st = check_next(fn, dl);
    if (st != NB_OK) return st;
    const int64_t b = peek(dl);
    if (b == 0) {
        take(dl, 0);
        return 0;
    }
    /* allocate before taking, so that a failure leaves the loader where it was */
    const int64_t xd[2] = {b, dl->ds->example_size};
    nb_tensor *x = nb__new(fn, 2, xd);
    nb_tensor *y = x ? nb__new(fn, 1, &b) : NULL;
    if (!y) {
        nb__drop(x);
        return nb__last_code();
    }
    take(dl, b);
    convert(dl, nb_tensor_data(x), nb_tensor_data(y));
    *images = x;
    *labels = y;
    return b;
}

int64_t nb_dataloader_next_into(nb_dataloader *dl, nb_tensor *images, nb_tensor *labels)
{
    static const char fn[] = "nb_dataloader_next_into";
    nb_status st = check_next(fn, dl);
    if (st != NB_OK) return st;
    if (!images) return nb__null(fn, "images");
    if (!labels) return nb__null(fn, "labels");
    const int64_t bs = dl->o.batch_size, d = dl->ds->example_size;
    char shape[NB__SHAPE_STR];
    if (nb_tensor_ndim(images) < 1 || nb_tensor_shape(images)[0] != bs ||
        nb_tensor_numel(images) % d != 0 || nb_tensor_numel(images) / d != bs)
        return nb__error(NB_EINVAL, fn, "images must hold a batch of [%lld, %lld], got %s",
                         (long long)bs, (long long)d,
                         nb__shape_str(shape, nb_tensor_ndim(images), nb_tensor_shape(images)));
    if (nb_tensor_ndim(labels) != 1 || nb_tensor_shape(labels)[0] != bs)
        return nb__error(NB_EINVAL, fn, "labels must be [%lld], got %s", (long long)bs,
                         nb__shape_str(shape, nb_tensor_ndim(labels), nb_tensor_shape(labels)));
    /* each row and its label are written in turn: shared elements would end up as either */
    if (nb__overlaps(images, labels))
        return nb__error(NB_EINVAL, fn,
                         "images and labels share memory: give them tensors "
                         "of their own");
    st = nb__check_inplace(fn, images);
    if (st == NB_OK) st = nb__check_inplace(fn, labels);
    if (st != NB_OK) return st;
    const int64_t b = peek(dl);
    take(dl, b);
    if (b == 0) return 0;
    convert(dl, nb_tensor_data(images), nb_tensor_data(labels));
    nb_tensor_bump_version(images);
    nb_tensor_bump_version(labels);
    return b;
}

const int64_t *nb_dataloader_batch_indices(const nb_dataloader *dl, int64_t *n)
{
    const int64_t count = dl ? dl->batch_n : 0;
    if (n) *n = count;
    return count > 0 ? dl->order + dl->batch_start : NULL;
}
