/* Grad mode: a per-thread switch that no_grad turns off. */
#include "autograd/internal.h"

static NB__TLS bool grad_disabled;

bool nb_is_grad_enabled(void)
{
    return !grad_disabled;
}

bool nb_set_grad_enabled(bool enabled)
{
    bool prev = !grad_disabled;
    grad_disabled = !enabled;
    return prev;
}

bool nb__grad_enabled(void)
{
    return !grad_disabled;
}
