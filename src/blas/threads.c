/*
 * nb_set_num_threads: one setting for nabla's pool, which runs its loops and its BLAS calls
 * (each block of a product a single-threaded sgemm, see blas.c).
 */
#define _POSIX_C_SOURCE 200809L
#include <stdatomic.h>
#include <unistd.h>

#include "blas/blas.h"
#include "core/internal.h"

static atomic_int num_threads;

nb_status nb_set_num_threads(int n)
{
    if (n < 1) return nb__error(NB_EINVAL, "nb_set_num_threads", "n must be >= 1, got %d", n);
    atomic_store(&num_threads, n);
    nb__pool_resize(n);
    return NB_OK;
}

int nb_get_num_threads(void)
{
    int set = atomic_load(&num_threads);
    if (set > 0) return set;
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

int nb__num_threads(void)
{
    return nb_get_num_threads();
}
