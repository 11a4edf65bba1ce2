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
    if (!ok) std::fprintf(stderr, "%s\n", nb_last_error()->message);
    return ok ? 0 : 1;
}
