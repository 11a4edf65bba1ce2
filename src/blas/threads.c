/* nb_set_num_threads: one setting for OpenBLAS and nabla's own loops. */
#define _POSIX_C_SOURCE 200809L
#include <unistd.h>

#include <cblas.h>

#include "core/internal.h"

#ifdef NB_HAVE_OPENBLAS_SET_NUM_THREADS
/* Not every OpenBLAS cblas.h declares these. */
void openblas_set_num_threads(int num_threads);
#endif

static int num_threads;

nb_status nb_set_num_threads(int n)
{
    if (n < 1) return nb__error(NB_EINVAL, "nb_set_num_threads", "n must be >= 1, got %d", n);
    num_threads = n;
#ifdef NB_HAVE_OPENBLAS_SET_NUM_THREADS
    openblas_set_num_threads(n);
#endif
    return NB_OK;
}

int nb_get_num_threads(void)
{
    if (num_threads > 0) return num_threads;
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

int nb__num_threads(void)
{
    return nb_get_num_threads();
}
