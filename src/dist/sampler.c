/*
 * The distributed sampler, PyTorch 1.13's DistributedSampler: the epoch's order (a
 * permutation from seed + epoch, or 0 .. size-1), padded cyclically to num_samples ·
 * num_replicas indices or cut to that many, of which rank r takes every num_replicas-th
 * from r. Padding repeats the order from its start however many times it takes, so index
 * k of the padded order is order[k mod size].
 */
#include <stdint.h>
#include <string.h>

#include "dist/internal.h"

struct nb_dist_sampler {
    int64_t size;
    int replicas, rank;
    nb_dist_sampler_options o;
    int64_t num_samples;
    int64_t *order;   /* the epoch's permutation, size entries (with shuffle) */
    int64_t *indices; /* this rank's, num_samples entries */
    nb_generator *gen;
};

nb_dist_sampler_options nb_dist_sampler_defaults(void)
{
    return (nb_dist_sampler_options){.shuffle = true, .seed = 0, .drop_last = false};
}

nb_dist_sampler *nb_dist_sampler_new(int64_t size, int num_replicas, int rank,
                                     const nb_dist_sampler_options *options)
{
    static const char fn[] = "nb_dist_sampler_new";
    if (size < 0) {
        nb_error_set(NB_EINVAL, fn, "size must be non-negative, got %lld", (long long)size);
        return NULL;
    }
    if (num_replicas < 1) {
        nb_error_set(NB_EINVAL, fn, "num_replicas must be at least 1, got %d", num_replicas);
        return NULL;
    }
    if (rank < 0 || rank >= num_replicas) {
        nb_error_set(NB_EINVAL, fn, "Invalid rank %d, rank should be in the interval [0, %d]", rank,
                     num_replicas - 1);
        return NULL;
    }
    /* the order and the indices take 8 bytes an entry, which size_t must count */
    nb_dist_sampler *s = NULL;
    if ((uint64_t)size > SIZE_MAX / sizeof *s->order) goto oom;
    s = nb_alloc(sizeof *s, 0);
    if (!s) goto oom;
    memset(s, 0, sizeof *s);
    s->size = size;
    s->replicas = num_replicas;
    s->rank = rank;
    s->o = options ? *options : nb_dist_sampler_defaults();
    /* without drop_last ceil(size / replicas), padded; with it floor, which is PyTorch's
       ceil((size - replicas) / replicas) when replicas does not divide size */
    s->num_samples = size / num_replicas;
    if (!s->o.drop_last && size % num_replicas != 0) s->num_samples++;
    const size_t bytes = (size_t)(s->num_samples ? s->num_samples : 1) * sizeof *s->indices;
    if (!(s->indices = nb_alloc(bytes, 0))) goto oom;
    if (s->o.shuffle) {
        s->order = nb_alloc((size_t)(size ? size : 1) * sizeof *s->order, 0);
        s->gen = s->order ? nb_generator_new(0) : NULL;
        if (!s->gen) goto oom;
    }
    nb_dist_sampler_set_epoch(s, 0);
    return s;
oom:
    nb_dist_sampler_free(s);
    nb_error_set(NB_ENOMEM, fn, "out of memory");
    return NULL;
}

void nb_dist_sampler_free(nb_dist_sampler *s)
{
    if (!s) return;
    nb_generator_free(s->gen);
    nb_free(s->order);
    nb_free(s->indices);
    nb_free(s);
}

nb_status nb_dist_sampler_set_epoch(nb_dist_sampler *s, int64_t epoch)
{
    static const char fn[] = "nb_dist_sampler_set_epoch";
    if (!s) return nb_error_null(fn, "s");
    if (s->o.shuffle && epoch > 0 && s->o.seed > UINT64_MAX - (uint64_t)epoch)
        return nb_error_set(NB_ERANGE, fn,
                            "seed + epoch = %llu + %lld is 2^64 or more (PyTorch: Overflow when "
                            "unpacking long)",
                            (unsigned long long)s->o.seed, (long long)epoch);
    if (s->o.shuffle) {
        /* torch.Generator().manual_seed(seed + epoch): a sum below 0 is taken mod 2^64 */
        nb_generator_seed(s->gen, s->o.seed + (uint64_t)epoch);
        nb_randperm_into(s->size, s->gen, s->order);
    }
    for (int64_t k = 0; k < s->num_samples; k++) {
        /* position in the padded (or cut) order; below size·ceil(..) < 2^63 */
        const int64_t at = (s->rank + k * s->replicas) % s->size;
        s->indices[k] = s->o.shuffle ? s->order[at] : at;
    }
    return NB_OK;
}

int64_t nb_dist_sampler_num_samples(const nb_dist_sampler *s)
{
    return s ? s->num_samples : -1;
}

const int64_t *nb_dist_sampler_indices(const nb_dist_sampler *s, int64_t *n)
{
    const int64_t count = s ? s->num_samples : 0;
    if (n) *n = count;
    return count > 0 ? s->indices : NULL;
}
