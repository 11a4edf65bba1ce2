/*
 * The generator's internal entry points for the layers above core (the data loader's
 * shuffling). Never installed.
 */
#ifndef NABLA_CORE_RNG_H
#define NABLA_CORE_RNG_H

#include <stdint.h>

#include "nabla/tensor.h"

/**
 * PyTorch's random64(): two 32-bit draws of gen (NULL: the default generator), the first in
 * the high half, taken under gen's lock.
 */
uint64_t nb__generator_random64(nb_generator *gen);

/**
 * PyTorch's CPU bernoulli_(p) without MKL, times one: out[i] = one where the low 53 bits of
 * the i-th random64() of gen (NULL: the default generator), times 2^-53, are below p, else
 * 0; n draws in order, all under gen's lock.
 */
void nb__generator_bernoulli(nb_generator *gen, float *out, int64_t n, double p, float one);

/**
 * torch.randperm(n, generator=gen) into out[0..n-1] (NULL gen: the default generator):
 * out = 0..n-1, then for i = 0 .. n-2 swap out[i] with out[i + random() % (n - i)], all
 * under gen's lock. With out NULL, the same draws are made and nothing is written (a
 * permutation drawn only to move the generator on).
 */
void nb__randperm(nb_generator *gen, int64_t n, int64_t *out);

#endif /* NABLA_CORE_RNG_H */
