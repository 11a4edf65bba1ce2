#include "dist_model.h"

#include <string.h>

nb_dataset *dm_dataset(void)
{
    uint8_t im[16 + DM_N * DM_IN] = {0, 0, 8, 2, 0, 0, 0, DM_N, 0, 0, 0, DM_IN};
    uint8_t lb[8 + DM_N] = {0, 0, 8, 1, 0, 0, 0, DM_N};
    uint64_t x = 88172645463325252u;
    for (int i = 0; i < DM_N; i++) {
        int sum = 0;
        for (int j = 0; j < DM_IN; j++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            im[12 + i * DM_IN + j] = (uint8_t)(x >> 56);
            sum += (int)(x >> 56);
        }
        lb[8 + i] = sum > DM_IN * 128 ? 1 : 0;
    }
    return nb_idx_load_memory(im, 12 + DM_N * DM_IN, lb, sizeof lb);
}

nb_status dm_model_init(dm_model *m, uint64_t seed)
{
    memset(m, 0, sizeof *m);
    nb_manual_seed(seed);
    const nb_shape shapes[DM_PARAMS] = {NB_SHAPE(DM_IN, DM_HIDDEN), NB_SHAPE(DM_HIDDEN),
                                        NB_SHAPE(DM_HIDDEN, 1), NB_SHAPE(1), NB_SHAPE(3)};
    for (int i = 0; i < DM_PARAMS; i++) {
        nb_tensor *t = nb_randn(shapes[i]);
        if (t) nb_mul_scalar_(t, 0.3f);
        m->params[i] = nb_requires_grad_(t, true);
        if (!m->params[i]) return nb_last_error()->code;
    }
    m->n = DM_PARAMS;
    nb_optim_options o = nb_optim_defaults(NB_OPTIM_ADAM);
    o.lr = 0.01;
    m->opt = nb_optim_new(m->params, DM_PARAMS, &o);
    return m->opt ? NB_OK : nb_last_error()->code;
}

void dm_model_free(dm_model *m)
{
    nb_optim_free(m->opt);
    for (int i = 0; i < DM_PARAMS; i++) nb_release(m->params[i]);
    memset(m, 0, sizeof *m);
}

/* Forward and backward of one batch: x [B, IN], y [B]. */
static nb_status forward_backward(dm_model *m, nb_tensor *x, nb_tensor *y)
{
    nb_tensor *h = nb_relu(nb_add(nb_matmul(x, m->params[0]), m->params[1]));
    nb_tensor *z = nb_add(nb_matmul(h, m->params[2]), m->params[3]);
    nb_tensor *t = nb_reshape(y, NB_SHAPE(nb_tensor_numel(y), 1));
    nb_tensor *loss = nb_binary_cross_entropy_with_logits(z, t, NULL, NULL, NB_MEAN);
    return loss ? nb_backward(loss, NULL, false) : nb_last_error()->code;
}

nb_status dm_train(nb_dist *d, dm_model *m, const nb_dataset *ds, int64_t global_batch, int steps,
                   dm_hook hook, void *ctx)
{
    const int replicas = d ? nb_dist_world_size(d) : 1, rank = d ? nb_dist_rank(d) : 0;
    nb_dist_sampler *s = nb_dist_sampler_new(nb_dataset_count(ds), replicas, rank, NULL);
    nb_dataloader_options lo = {.batch_size = global_batch / replicas, .drop_last = true};
    nb_dataloader *dl = s ? nb_dataloader_new(ds, &lo) : NULL;
    nb_status rc = dl ? NB_OK : nb_last_error()->code;
    int step = 0;
    for (int64_t epoch = 0; rc == NB_OK && step < steps; epoch++) {
        int64_t n;
        nb_dist_sampler_set_epoch(s, epoch);
        const int64_t *mine = nb_dist_sampler_indices(s, &n);
        rc = nb_dataloader_set_order(dl, mine, n);
        if (rc == NB_OK) rc = nb_dataloader_begin_epoch(dl);
        nb_tensor *x, *y;
        while (rc == NB_OK && step < steps && nb_dataloader_next(dl, &x, &y) > 0) {
            nb_scope *scope = nb_scope_begin();
            rc = forward_backward(m, x, y);
            if (rc == NB_OK && hook) rc = hook(ctx, m, step, DM_AFTER_BACKWARD);
            if (rc == NB_OK && d) rc = nb_dist_allreduce_grads(d, m->params, m->n);
            if (rc == NB_OK) rc = nb_optim_step(m->opt);
            if (rc == NB_OK) rc = nb_optim_zero_grad(m->opt, true);
            nb_scope_end(scope);
            nb_release(x);
            nb_release(y);
            if (rc == NB_OK && hook) rc = hook(ctx, m, step, DM_AFTER_STEP);
            step++;
        }
    }
    nb_dataloader_free(dl);
    nb_dist_sampler_free(s);
    return rc;
}
