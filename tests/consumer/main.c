/* Builds against the installed headers and library; prints the seed's gradient of b. */
#include <nabla/nabla.h>

int main(void)
{
    nb_manual_seed(0);
    nb_scope *s = nb_scope_begin();
    nb_tensor *x = nb_ones(NB_SHAPE(5)), *y = nb_ones(NB_SHAPE(3));
    nb_tensor *w = nb_requires_grad_(nb_randn(NB_SHAPE(5, 3)), true);
    nb_tensor *b = nb_requires_grad_(nb_randn(NB_SHAPE(3)), true);
    nb_tensor *loss =
        nb_binary_cross_entropy_with_logits(nb_add(nb_matmul(x, w), b), y, NULL, NULL, NB_MEAN);
    int rc = !loss || nb_backward(loss, NULL, false) != NB_OK || nb_print(nb_tensor_grad(b));
    if (rc) fprintf(stderr, "%s\n", nb_last_error()->message);
    nb_scope_end(s);
    return rc;
}
