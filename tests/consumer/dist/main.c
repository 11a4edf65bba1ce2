/* The seed's gradient of b on every rank, averaged over the ranks (the same, so unchanged);
 * rank 0 prints it. Run under mpirun. */
#include <nabla/dist.h>
#include <nabla/nabla.h>

int main(int argc, char **argv)
{
    nb_dist *d = nb_dist_init(&argc, &argv, NULL);
    if (!d) {
        fprintf(stderr, "%s\n", nb_last_error()->message);
        return 1;
    }
    nb_manual_seed(0);
    nb_scope *s = nb_scope_begin();
    nb_tensor *x = nb_ones(NB_SHAPE(5)), *y = nb_ones(NB_SHAPE(3));
    nb_tensor *w = nb_requires_grad_(nb_randn(NB_SHAPE(5, 3)), true);
    nb_tensor *b = nb_requires_grad_(nb_randn(NB_SHAPE(3)), true);
    nb_tensor *params[2] = {w, b};
    nb_tensor *loss =
        nb_binary_cross_entropy_with_logits(nb_add(nb_matmul(x, w), b), y, NULL, NULL, NB_MEAN);
    nb_status rc = loss ? nb_backward(loss, NULL, false) : nb_last_error()->code;
    if (rc == NB_OK) rc = nb_dist_allreduce_grads(d, params, 2);
    if (rc == NB_OK && nb_dist_rank(d) == 0) rc = nb_print(nb_tensor_grad(b));
    nb_scope_end(s);
    if (rc != NB_OK) nb_dist_abort(d, rc);
    return nb_dist_finalize(d) == NB_OK ? 0 : 1;
}
