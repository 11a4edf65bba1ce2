/* The dataset object: accessors and subsets. The IDX reader (idx.c) fills it. */
#include <string.h>

#include "core/internal.h"
#include "data/internal.h"

nb_dataset *nb__dataset_new(const char *fn, int64_t count, int ndim, const int64_t *dims,
                            int64_t example_size, int64_t num_classes, uint8_t *images,
                            uint8_t *labels)
{
    const size_t image_bytes = (size_t)count * (size_t)example_size;
    nb_dataset *ds = nb__calloc(sizeof *ds);
    /* never a zero-byte request: a dataset of no examples still has its buffers */
    if (ds && !images) images = nb__alloc(image_bytes ? image_bytes : 1, NB__ALIGN);
    if (ds && !labels) labels = nb__alloc(count ? (size_t)count : 1, NB__ALIGN);
    if (!ds || !images || !labels) {
        nb__free(ds);
        nb__free(images);
        nb__free(labels);
        nb__oom(fn);
        return NULL;
    }
    ds->count = count;
    ds->ndim = ndim;
    memcpy(ds->dims, dims, (size_t)ndim * sizeof *dims);
    ds->example_size = example_size;
    ds->num_classes = num_classes;
    ds->images = images;
    ds->labels = labels;
    return ds;
}

void nb_dataset_free(nb_dataset *ds)
{
    if (!ds) return;
    nb__free(ds->images);
    nb__free(ds->labels);
    nb__free(ds);
}

int64_t nb_dataset_count(const nb_dataset *ds)
{
    return ds ? ds->count : -1;
}

nb_shape nb_dataset_image_shape(const nb_dataset *ds)
{
    if (!ds) return nb_shape_make(0, NULL);
    return nb_shape_make(ds->ndim, ds->dims);
}

int64_t nb_dataset_example_size(const nb_dataset *ds)
{
    return ds ? ds->example_size : -1;
}

int64_t nb_dataset_num_classes(const nb_dataset *ds)
{
    return ds ? ds->num_classes : -1;
}

const uint8_t *nb_dataset_images(const nb_dataset *ds)
{
    return ds ? ds->images : NULL;
}

const uint8_t *nb_dataset_labels(const nb_dataset *ds)
{
    return ds ? ds->labels : NULL;
}

/* A dataset of count examples shaped like ds's, or NULL with the error recorded for fn. */
static nb_dataset *dataset_like(const char *fn, const nb_dataset *ds, int64_t count,
                                int64_t num_classes)
{
    if (count > 0 && ds->example_size > (int64_t)(SIZE_MAX / 2) / count) {
        nb__error(NB_ERANGE, fn, "%lld examples of %lld bytes do not fit in memory",
                  (long long)count, (long long)ds->example_size);
        return NULL;
    }
    return nb__dataset_new(fn, count, ds->ndim, ds->dims, ds->example_size, num_classes, NULL,
                           NULL);
}

/* Copy example src of from into slot dst of to, with its label. */
static void copy_example(nb_dataset *to, int64_t dst, const nb_dataset *from, int64_t src,
                         uint8_t label)
{
    const size_t d = (size_t)from->example_size;
    memcpy(to->images + (size_t)dst * d, from->images + (size_t)src * d, d);
    to->labels[dst] = label;
}

nb_dataset *nb_dataset_subset(const nb_dataset *ds, const int64_t *indices, int64_t n)
{
    static const char fn[] = "nb_dataset_subset";
    if (!ds) {
        nb__null(fn, "ds");
        return NULL;
    }
    if (n < 0) {
        nb__error(NB_EINVAL, fn, "n must be >= 0, got %lld", (long long)n);
        return NULL;
    }
    if (!indices && n > 0) {
        nb__error(NB_EINVAL, fn, "argument 'indices' is NULL");
        return NULL;
    }
    for (int64_t i = 0; i < n; i++) {
        if (indices[i] < 0 || indices[i] >= ds->count) {
            nb__error(NB_ERANGE, fn, "indices[%lld] = %lld is outside [0, %lld)", (long long)i,
                      (long long)indices[i], (long long)ds->count);
            return NULL;
        }
    }
    nb_dataset *sub = dataset_like(fn, ds, n, ds->num_classes);
    if (!sub) return NULL;
    for (int64_t i = 0; i < n; i++) copy_example(sub, i, ds, indices[i], ds->labels[indices[i]]);
    return sub;
}

nb_dataset *nb_dataset_select_classes(const nb_dataset *ds, const int *classes, int n)
{
    static const char fn[] = "nb_dataset_select_classes";
    if (!ds) {
        nb__null(fn, "ds");
        return NULL;
    }
    if (!classes) {
        nb__error(NB_EINVAL, fn, "argument 'classes' is NULL");
        return NULL;
    }
    if (n < 1 || n > 256) {
        nb__error(NB_EINVAL, fn, "n must be in [1, 256], got %d", n);
        return NULL;
    }
    /* new_label[old] = its position in classes, or -1 for a class left out */
    int new_label[256];
    for (int c = 0; c < 256; c++) new_label[c] = -1;
    for (int k = 0; k < n; k++) {
        if (classes[k] < 0 || classes[k] >= ds->num_classes) {
            nb__error(NB_EINVAL, fn, "classes[%d] = %d is outside [0, %lld)", k, classes[k],
                      (long long)ds->num_classes);
            return NULL;
        }
        if (new_label[classes[k]] >= 0) {
            nb__error(NB_EINVAL, fn, "class %d is given twice", classes[k]);
            return NULL;
        }
        new_label[classes[k]] = k;
    }
    int64_t count = 0;
    for (int64_t i = 0; i < ds->count; i++)
        if (new_label[ds->labels[i]] >= 0) count++;
    nb_dataset *sub = dataset_like(fn, ds, count, n);
    if (!sub) return NULL;
    int64_t j = 0;
    for (int64_t i = 0; i < ds->count; i++) {
        int k = new_label[ds->labels[i]];
        if (k >= 0) copy_example(sub, j++, ds, i, (uint8_t)k);
    }
    return sub;
}
