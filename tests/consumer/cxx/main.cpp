// A C++17 program on nabla's C API: the seed's gradient of b, with RAII for the scope.
#include <nabla/nabla.h>

#include <cstdio>
#include <initializer_list>
#include <memory>

namespace
{
struct scope_end {
    void operator()(nb_scope *s) const
    {
        nb_scope_end(s);
    }
};
using scope_ptr = std::unique_ptr<nb_scope, scope_end>;

nb_shape make_shape(std::initializer_list<int64_t> dims)
{
    return nb_shape_make(static_cast<int>(dims.size()), dims.begin());
}
} // namespace

int main()
{
    static_assert(NB_VERSION >= 100, "nabla 0.1 or later");
    nb_manual_seed(0);
    scope_ptr s(nb_scope_begin());
    nb_tensor *x = nb_ones(make_shape({5})), *y = nb_ones(make_shape({3}));
    nb_tensor *w = nb_requires_grad_(nb_randn(make_shape({5, 3})), true);
    nb_tensor *b = nb_requires_grad_(nb_randn(make_shape({3})), true);
    nb_tensor *loss = nb_binary_cross_entropy_with_logits(nb_add(nb_matmul(x, w), b), y, nullptr,
                                                          nullptr, NB_MEAN);
    bool ok = loss && nb_backward(loss, nullptr, false) == NB_OK;
    NB_NO_GRAD
    {
        ok = ok && nb_sub_(w, nb_mul_scalar(nb_tensor_grad(w), 0.1f)) == NB_OK;
    }
    ok = ok && nb_print(nb_tensor_grad(b)) == NB_OK;
    if (!ok) {
        std::fprintf(stderr, "%s\n", nb_last_error()->message);
        return 1;
    }
    // C++'s spellings of NB_DIMS_ALL, NB_DIMS(0) and NB_SHAPE0: the sum of the 3 gradients
    // over every dim is a 0-d tensor, equal to the sum over dim 0.
    const int dim0[] = {0};
    nb_tensor *all = nb_sum(nb_tensor_grad(b), nb_dims_all(), false);
    nb_tensor *first = nb_sum(nb_tensor_grad(b), nb_dims_make(1, dim0), false);
    nb_shape scalar = nb_shape_make(0, nullptr);
    float a = 0.0f, f = 1.0f;
    if (nb_tensor_item(all, &a) != NB_OK || nb_tensor_item(first, &f) != NB_OK ||
        nb_tensor_ndim(all) != scalar.ndim || a != f) {
        std::fprintf(stderr, "sum over every dim: %g (ndim %d), over dim 0: %g: %s\n",
                     static_cast<double>(a), nb_tensor_ndim(all), static_cast<double>(f),
                     nb_last_error()->message);
        return 1;
    }
    return 0;
}
