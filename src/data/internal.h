/*
 * Internal definitions of the data layer: the dataset object shared by the IDX reader,
 * the subsets and the loader. Never installed.
 */
#ifndef NABLA_DATA_INTERNAL_H
#define NABLA_DATA_INTERNAL_H

#include <stdint.h>

#include "nabla/data.h"

struct nb_dataset {
    int64_t count;
    int ndim;                  /* of one example: 2 for [28, 28] */
    int64_t dims[NB_MAX_DIMS]; /* the example's shape */
    int64_t example_size;      /* the product of dims: one batch row */
    int64_t num_classes;       /* labels are below it */
    uint8_t *images;           /* count × example_size bytes, as the file holds them */
    uint8_t *labels;           /* count bytes */
};

/**
 * A dataset of count examples of shape dims[0..ndim-1] (example_size values each, count ×
 * example_size fitting in size_t) and num_classes classes. images and labels are buffers of
 * the right sizes from nb__alloc that the dataset adopts (they are freed on failure too), or
 * NULL for new, uninitialised ones. NULL with NB_ENOMEM recorded for fn.
 */
nb_dataset *nb__dataset_new(const char *fn, int64_t count, int ndim, const int64_t *dims,
                            int64_t example_size, int64_t num_classes, uint8_t *images,
                            uint8_t *labels);

#endif /* NABLA_DATA_INTERNAL_H */
