/*
 * What travels between the ranks: broadcasts of weights, averages of gradients, sums of
 * metrics. The data is packed into one bucket of at most bucket_cap_mb at a time, so a
 * model of any size needs one buffer of that size, kept from call to call: a warm training
 * step allocates nothing.
 *
 * Every function first checks its arguments on this rank, allocates what it may need, and
 * only then agrees with the other ranks (dist/internal.h): after the agreement nothing can
 * fail but MPI itself, so no rank is left in a collective the others never reach.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dist/internal.h"

/* p if it holds need entries of elem bytes, else a new block (p freed), else NULL (p kept,
 *cap unchanged). Contents are not kept. */
static void *reserve(void *p, int64_t *cap, int64_t need, size_t elem)
{
    if (need < 1) need = 1;
    if (need <= *cap) return p;
    void *q = nb_alloc((size_t)need * elem, 64);
    if (!q) return NULL;
    nb_free(p);
    *cap = need;
    return q;
}

/* The bucket for a call that moves total floats, and the scratch of deterministic sums. */
static nb_status reserve_bucket(nb_dist *d, const char *fn, int64_t total)
{
    const int64_t need = total < d->bucket_elems ? total : d->bucket_elems;
    float *b = reserve(d->buf, &d->buf_cap, need, sizeof *b);
    if (!b) return nb_error_set(NB_ENOMEM, fn, "out of memory");
    d->buf = b;
    if (d->o.deterministic && d->size > 1) {
        /* every rank's copy of this rank's chunk: size · ceil(need / size) */
        const int64_t chunk = (need + d->size - 1) / d->size;
        float *s = reserve(d->scratch, &d->scratch_cap, chunk * d->size, sizeof *s);
        if (!s) return nb_error_set(NB_ENOMEM, fn, "out of memory");
        d->scratch = s;
    }
    return NB_OK;
}

static nb_status reserve_segs(nb_dist *d, const char *fn, int64_t n)
{
    nb__dist_seg *s = reserve(d->segs, &d->segs_cap, n, sizeof *s);
    if (!s) return nb_error_set(NB_ENOMEM, fn, "out of memory");
    d->segs = s;
    return NB_OK;
}

/* ---- the bucket ----------------------------------------------------------------------- */

typedef enum copy_dir { ADVANCE, TO_BUCKET, FROM_BUCKET } copy_dir;

/* Move len floats between the bucket and the segments from segment *i, offset *off on (to
   the bucket times scale), and advance the position past them. */
static void copy_run(const nb__dist_seg *s, int64_t *i, int64_t *off, float *bucket, int64_t len,
                     copy_dir dir, float scale)
{
    while (len > 0) {
        const int64_t left = s[*i].n - *off;
        const int64_t take = left < len ? left : len;
        float *data = s[*i].data + *off;
        if (dir == TO_BUCKET && scale == 1.0f)
            memcpy(bucket, data, (size_t)take * sizeof *bucket);
        else if (dir == TO_BUCKET)
            for (int64_t k = 0; k < take; k++) bucket[k] = data[k] * scale;
        else if (dir == FROM_BUCKET)
            memcpy(data, bucket, (size_t)take * sizeof *bucket);
        bucket += take;
        len -= take;
        *off += take;
        if (*off == s[*i].n) {
            ++*i;
            *off = 0;
        }
    }
}

/* Sum buf[0..len-1] over the ranks: MPI's allreduce, or in rank order (deterministic):
   each rank sums one chunk of every rank's copy, x_0 + x_1 + ..., then all gather them. */
static int sum_bucket(nb_dist *d, float *buf, int len)
{
    if (!d->o.deterministic)
        return MPI_Allreduce(MPI_IN_PLACE, buf, len, MPI_FLOAT, MPI_SUM, d->comm);
    const int w = d->size, base = len / w, extra = len % w;
    for (int r = 0, at = 0; r < w; r++) {
        d->counts[r] = base + (r < extra);
        d->displs[r] = at;
        at += d->counts[r];
    }
    const int mine = d->counts[d->rank];
    for (int r = 0; r < w; r++) {
        d->rcounts[r] = mine;
        d->rdispls[r] = r * mine;
    }
    int rc = MPI_Alltoallv(buf, d->counts, d->displs, MPI_FLOAT, d->scratch, d->rcounts, d->rdispls,
                           MPI_FLOAT, d->comm);
    if (rc != MPI_SUCCESS) return rc;
    float *out = buf + d->displs[d->rank];
    memcpy(out, d->scratch, (size_t)mine * sizeof *out);
    for (int r = 1; r < w; r++) {
        const float *x = d->scratch + (size_t)r * (size_t)mine;
        for (int k = 0; k < mine; k++) out[k] += x[k];
    }
    return MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, buf, d->counts, d->displs, MPI_FLOAT,
                          d->comm);
}

typedef enum stream_kind { SUM_ALL, FROM_ROOT } stream_kind;

/*
 * Pass the segments' data (total floats) through the bucket: summed over the ranks, each
 * element first times scale (SUM_ALL), or copied from root to the others (FROM_ROOT).
 * Every rank has the same layout (the agreement checked it), so they fill and send the
 * same buckets. Only MPI can fail here.
 */
static nb_status stream(nb_dist *d, const char *fn, const nb__dist_seg *s, int64_t total,
                        stream_kind kind, int root, float scale)
{
    const bool send = kind == SUM_ALL || d->rank == root;
    const bool receive = kind == SUM_ALL || d->rank != root;
    int64_t i = 0, off = 0;
    for (int64_t done = 0; done < total;) {
        const int64_t left = total - done;
        const int len = (int)(left < d->bucket_elems ? left : d->bucket_elems);
        const int64_t i0 = i, off0 = off;
        copy_run(s, &i, &off, d->buf, len, send ? TO_BUCKET : ADVANCE, scale);
        int rc = kind == SUM_ALL ? sum_bucket(d, d->buf, len)
                                 : MPI_Bcast(d->buf, len, MPI_FLOAT, root, d->comm);
        if (rc != MPI_SUCCESS)
            return nb__dist_mpi_error(d, fn, kind == SUM_ALL ? "the sum" : "MPI_Bcast", rc);
        if (receive) {
            int64_t j = i0, joff = off0;
            copy_run(s, &j, &joff, d->buf, len, FROM_BUCKET, 1.0f);
        }
        done += len;
    }
    return NB_OK;
}

/* ---- checks --------------------------------------------------------------------------- */

static nb_status check_list(const char *fn, const char *what, nb_tensor *const *list, int n)
{
    if (n < 0) return nb_error_set(NB_EINVAL, fn, "n must be non-negative, got %d", n);
    if (!list && n > 0) return nb_error_set(NB_EINVAL, fn, "argument '%s' is NULL", what);
    for (int i = 0; i < n; i++) {
        if (!list[i]) {
            char name[40];
            snprintf(name, sizeof name, "%s[%d]", what, i);
            return nb_error_null(fn, name);
        }
    }
    return NB_OK;
}

/* ---- broadcast ------------------------------------------------------------------------ */

/* The i-th tensor of a broadcast: from the list, or from the state dict. */
static nb_tensor *item(nb_tensor *const *list, const nb_state_dict *sd, int i)
{
    return list ? list[i] : nb_state_dict_tensor(sd, i);
}

static nb_status plan_broadcast(nb_dist *d, const char *fn, nb_tensor *const *list,
                                const nb_state_dict *sd, int n, int root, nb__dist_call *c,
                                int64_t *total)
{
    if (root < 0 || root >= d->size)
        return nb_error_set(NB_EINVAL, fn, "root must be in [0, %d], got %d", d->size - 1, root);
    uint64_t h = nb__dist_digest(NB__DIST_DIGEST0, (uint64_t)n);
    for (int i = 0; i < n; i++) {
        h = nb__dist_digest_shape(h, item(list, sd, i));
        if (sd) h = nb__dist_digest_str(h, nb_state_dict_name(sd, i));
        *total += nb_tensor_numel(item(list, sd, i));
    }
    c->digest = h;
    nb_status st = reserve_bucket(d, fn, *total);
    return st == NB_OK ? reserve_segs(d, fn, n) : st;
}

static nb_status broadcast(nb_dist *d, const char *fn, nb__dist_op op, nb_tensor *const *list,
                           const nb_state_dict *sd, int n, int root, nb_status local)
{
    nb__dist_call c = {.fn = fn,
                       .op = op,
                       .mismatch = sd ? "the ranks' state dicts differ (in names, number or sizes)"
                                      : "the ranks' tensors differ (in number or sizes)",
                       .aux = root,
                       .aux_name = "roots"};
    int64_t total = 0;
    c.local = local != NB_OK ? local : plan_broadcast(d, fn, list, sd, n, root, &c, &total);
    nb_status st = nb__dist_agree(d, &c, NULL);
    if (st != NB_OK || d->size == 1) return st;
    for (int i = 0; i < n; i++) {
        nb_tensor *t = item(list, sd, i);
        d->segs[i] = (nb__dist_seg){nb_tensor_data(t), nb_tensor_numel(t)};
    }
    st = stream(d, fn, d->segs, total, FROM_ROOT, root, 1.0f);
    if (st == NB_OK && d->rank != root)
        for (int i = 0; i < n; i++) nb_tensor_bump_version(item(list, sd, i));
    return st;
}

nb_status nb_dist_broadcast(nb_dist *d, nb_tensor *const *tensors, int n, int root)
{
    static const char fn[] = "nb_dist_broadcast";
    if (!d) return nb_error_null(fn, "d");
    nb_status local = check_list(fn, "tensors", tensors, n);
    return broadcast(d, fn, NB__DIST_BROADCAST, tensors, NULL, local == NB_OK ? n : 0, root, local);
}

nb_status nb_dist_broadcast_state_dict(nb_dist *d, nb_state_dict *sd, int root)
{
    static const char fn[] = "nb_dist_broadcast_state_dict";
    if (!d) return nb_error_null(fn, "d");
    nb_status local = sd ? NB_OK : nb_error_set(NB_EINVAL, fn, "argument 'sd' is NULL");
    const int64_t n = nb_state_dict_size(sd);
    if (local == NB_OK && n > 0x7fffffff)
        local = nb_error_set(NB_ERANGE, fn, "too many tensors (%lld)", (long long)n);
    return broadcast(d, fn, NB__DIST_BROADCAST_STATE_DICT, NULL, sd, local == NB_OK ? (int)n : 0,
                     root, local);
}

/* ---- gradients ------------------------------------------------------------------------ */

/*
 * A zero gradient for params[i], which has none here, in the group's cache: it stays there,
 * still zeros, while no rank has that gradient (a parameter the model does not use), so a
 * warm step allocates nothing; when it becomes the parameter's .grad it leaves the cache.
 */
static nb_status zero_grad_for(nb_dist *d, const char *fn, nb_tensor *p, int i)
{
    nb_tensor *t = d->temps[i];
    const int nd = nb_tensor_ndim(p);
    if (t && nb_tensor_ndim(t) == nd &&
        memcmp(nb_tensor_shape(t), nb_tensor_shape(p), (size_t)nd * sizeof(int64_t)) == 0)
        return NB_OK;
    /* made in a scope of its own and retained: the group's reference, whatever scope the
       program has open */
    nb_scope *scope = nb_scope_begin();
    nb_tensor *z = scope ? nb_retain(nb_zeros_like(p)) : NULL;
    if (scope) nb_scope_end(scope);
    if (!z) return nb_error_set(NB_ENOMEM, fn, "out of memory");
    nb_release(t);
    d->temps[i] = z;
    return NB_OK;
}

/* Room for n cached zero gradients, keeping those cached (the others NULL). */
static nb_status reserve_temps(nb_dist *d, const char *fn, int64_t n)
{
    if (n <= d->temps_cap) return NB_OK;
    nb_tensor **t = nb_alloc((size_t)n * sizeof *t, 0);
    if (!t) return nb_error_set(NB_ENOMEM, fn, "out of memory");
    for (int64_t i = 0; i < n; i++) t[i] = i < d->temps_cap ? d->temps[i] : NULL;
    nb_free(d->temps);
    d->temps = t;
    d->temps_cap = n;
    return NB_OK;
}

/* A parameter and its place in the list, sorted by address then place. */
struct nb__dist_param_at {
    uintptr_t p;
    int i;
};

static int by_address(const void *a, const void *b)
{
    const struct nb__dist_param_at *x = a, *y = b;
    if (x->p != y->p) return x->p < y->p ? -1 : 1;
    return (x->i > y->i) - (x->i < y->i);
}

/*
 * d->repeat[i]: params[i] is listed before i, so that its gradient is averaged once, as DDP
 * keeps a parameter once (averaging it again, in a later bucket, would average the average).
 */
static nb_status find_repeats(nb_dist *d, const char *fn, nb_tensor *const *params, int n)
{
    unsigned char *r = reserve(d->repeat, &d->repeat_cap, n, sizeof *r);
    if (!r) return nb_error_set(NB_ENOMEM, fn, "out of memory");
    d->repeat = r;
    struct nb__dist_param_at *o = reserve(d->order, &d->order_cap, n, sizeof *o);
    if (!o) return nb_error_set(NB_ENOMEM, fn, "out of memory");
    d->order = o;
    for (int i = 0; i < n; i++) o[i] = (struct nb__dist_param_at){(uintptr_t)params[i], i};
    if (n > 1) qsort(o, (size_t)n, sizeof *o, by_address);
    for (int k = 0; k < n; k++) r[o[k].i] = k > 0 && o[k].p == o[k - 1].p;
    return NB_OK;
}

/*
 * This rank's side of a gradient average: the checks, the digest of the parameters, how
 * many that require grad have a gradient here, and zero gradients for those that have none
 * (used if another rank has one), made now so that nothing is allocated after the
 * agreement.
 */
static nb_status plan_grads(nb_dist *d, const char *fn, nb_tensor *const *params, int n,
                            nb__dist_call *c, int64_t *n_req)
{
    nb_status st = check_list(fn, "params", params, n);
    if (st == NB_OK) st = find_repeats(d, fn, params, n);
    if (st != NB_OK) return st;
    uint64_t h = nb__dist_digest(NB__DIST_DIGEST0, (uint64_t)n);
    int64_t total = 0;
    for (int i = 0; i < n; i++) {
        nb_tensor *p = params[i];
        if (!nb_tensor_is_leaf(p) && !nb_tensor_retains_grad(p))
            return nb_error_set(NB_EINVAL, fn,
                                "params[%d] is not a leaf and does not retain its grad", i);
        const bool req = nb_tensor_requires_grad(p);
        /* the repeats are part of the list every rank must pass alike */
        h = nb__dist_digest(nb__dist_digest(nb__dist_digest_shape(h, p), req), d->repeat[i]);
        if (!req || d->repeat[i]) continue;
        ++*n_req;
        total += nb_tensor_numel(p);
        if (nb_tensor_grad(p)) c->have++;
    }
    c->digest = h;
    if ((st = reserve_bucket(d, fn, total)) != NB_OK || (st = reserve_segs(d, fn, n)) != NB_OK ||
        (st = reserve_temps(d, fn, n)) != NB_OK)
        return st;
    unsigned char *f = reserve(d->flags, &d->flags_cap, n, sizeof *f);
    if (!f) return nb_error_set(NB_ENOMEM, fn, "out of memory");
    d->flags = f;
    for (int i = 0; i < n && c->have < *n_req; i++)
        if (nb_tensor_requires_grad(params[i]) && !d->repeat[i] && !nb_tensor_grad(params[i]) &&
            (st = zero_grad_for(d, fn, params[i], i)) != NB_OK)
            return st;
    return NB_OK;
}

/* After the agreement: which parameters take part, the sum, the new gradients. */
static nb_status average_grads(nb_dist *d, const char *fn, nb_tensor *const *params, int n,
                               bool all_have)
{
    unsigned char *used = d->flags;
    for (int i = 0; i < n; i++)
        used[i] = nb_tensor_requires_grad(params[i]) && !d->repeat[i] &&
                  (all_have || nb_tensor_grad(params[i]));
    /* some rank lacks a gradient: a parameter takes part when any rank has one */
    if (!all_have) {
        int rc = MPI_Allreduce(MPI_IN_PLACE, used, n, MPI_UNSIGNED_CHAR, MPI_MAX, d->comm);
        if (rc != MPI_SUCCESS) return nb__dist_mpi_error(d, fn, "MPI_Allreduce", rc);
    }
    int64_t nseg = 0, total = 0;
    for (int i = 0; i < n; i++) {
        if (!used[i]) continue;
        nb_tensor *g = nb_tensor_grad(params[i]);
        if (!g) g = d->temps[i];
        d->segs[nseg++] = (nb__dist_seg){nb_tensor_data(g), nb_tensor_numel(g)};
        total += nb_tensor_numel(g);
    }
    /* DDP: each gradient times 1 / world_size (a float) on its way into the bucket */
    const float scale = (float)(1.0 / (double)d->size);
    nb_status st = stream(d, fn, d->segs, total, SUM_ALL, 0, scale);
    for (int i = 0; st == NB_OK && i < n; i++) {
        if (!used[i]) continue;
        nb_tensor *g = nb_tensor_grad(params[i]);
        if (g) {
            nb_tensor_bump_version(g);
            continue;
        }
        if (nb_tensor_set_grad(params[i], d->temps[i]) != NB_OK)
            st = nb__dist_fail(d, NB_ESTATE, fn,
                               "params[%d]: the average could not be set as its grad", i);
        nb_release(d->temps[i]); /* the parameter holds it now (or nobody) */
        d->temps[i] = NULL;
    }
    return st;
}

nb_status nb_dist_allreduce_grads(nb_dist *d, nb_tensor *const *params, int n)
{
    static const char fn[] = "nb_dist_allreduce_grads";
    if (!d) return nb_error_null(fn, "d");
    nb__dist_call c = {.fn = fn,
                       .op = NB__DIST_ALLREDUCE_GRADS,
                       .mismatch =
                           "the ranks' parameters differ (in number, sizes or requires_grad)"};
    int64_t n_req = 0, min_have = 0;
    c.local = plan_grads(d, fn, params, n, &c, &n_req);
    nb_status st = nb__dist_agree(d, &c, &min_have);
    if (st == NB_OK && d->size > 1) st = average_grads(d, fn, params, n, min_have == n_req);
    return st;
}

/* ---- metrics -------------------------------------------------------------------------- */

nb_status nb_dist_all_reduce(nb_dist *d, nb_tensor *t, nb_dist_op op)
{
    static const char fn[] = "nb_dist_all_reduce";
    if (!d) return nb_error_null(fn, "d");
    nb__dist_call c = {.fn = fn,
                       .op = NB__DIST_ALL_REDUCE,
                       .mismatch = "the ranks' tensors differ in size",
                       .aux = op,
                       .aux_name = "ops"};
    const int64_t numel = nb_tensor_numel(t);
    if (!t)
        c.local = nb_error_null(fn, "t");
    else if (op != NB_DIST_SUM && op != NB_DIST_AVG)
        c.local = nb_error_set(NB_EINVAL, fn, "unknown op %d", (int)op);
    else if ((c.local = reserve_bucket(d, fn, numel)) == NB_OK)
        c.local = reserve_segs(d, fn, 1);
    if (t) c.digest = nb__dist_digest_shape(NB__DIST_DIGEST0, t);
    nb_status st = nb__dist_agree(d, &c, NULL);
    if (st != NB_OK || d->size == 1) return st;
    float *x = nb_tensor_data(t);
    d->segs[0] = (nb__dist_seg){x, numel};
    st = stream(d, fn, d->segs, numel, SUM_ALL, 0, 1.0f);
    if (st != NB_OK) return st;
    if (op == NB_DIST_AVG)
        for (int64_t i = 0; i < numel; i++) x[i] /= (float)d->size;
    nb_tensor_bump_version(t);
    return NB_OK;
}
