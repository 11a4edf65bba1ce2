/**
 * @file
 * nabla — datasets and batches: the MNIST family from IDX files, and a data loader that
 * yields float32 batches in the order PyTorch's DataLoader yields them.
 *
 *     nb_dataset *train = nb_mnist_load("/usr/share/datasets/fashion-mnist", true);
 *     nb_dataloader_options o = {.batch_size = 128, .shuffle = true};
 *     nb_dataloader *dl = nb_dataloader_new(train, &o);
 *     for (int epoch = 0; epoch < 15; epoch++) {
 *         nb_dataloader_begin_epoch(dl);              // for x, y in loader:
 *         nb_tensor *x, *y;                           // x [B, 784] in [0, 1], y [B]
 *         while (nb_dataloader_next(dl, &x, &y) > 0) {
 *             ... a training step ...
 *             nb_release(x);
 *             nb_release(y);
 *         }
 *     }
 *     nb_dataloader_free(dl);
 *     nb_dataset_free(train);
 *
 * A dataset keeps its examples as the file has them, uint8 (60 000 × 784 bytes for
 * MNIST's training set, not floats); each batch is converted on the fly, as torchvision's
 * ToTensor (x / 255 in float32) and, optionally, Normalize ((x - mean) / std) convert them.
 * With the same seed, a shuffling loader yields the same batches as
 * torch.utils.data.DataLoader(..., shuffle=True) in PyTorch 1.13.
 *
 * Datasets and loaders are not thread-safe objects: use each from one thread at a time.
 */
#ifndef NABLA_DATA_H
#define NABLA_DATA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tensor.h"

NB_BEGIN_DECLS

/** A dataset: examples and their labels, held in memory (opaque; nb_mnist_load). */
typedef struct nb_dataset nb_dataset;
/** A data loader: batches of a dataset, in order or shuffled (opaque; nb_dataloader_new). */
typedef struct nb_dataloader nb_dataloader;

/* ---------------------------------------------------------------------------------------
 * IDX files (the MNIST format): a header of two zero bytes, a data type code (0x08:
 * unsigned byte, the only one MNIST uses and the only one nabla reads), the number of
 * dimensions, each dimension as a big-endian uint32, then the data, row-major. An image
 * file has 2 to NB_MAX_DIMS dimensions ([count, 28, 28]); a label file has one ([count]).
 * A file may be gzip-compressed (recognised by its first bytes, not its name), of several
 * members as gunzip reads them, with zero bytes after a member skipped as Python's gzip does.
 *
 * The loaders below fail, with one line naming the function and the file, on:
 * NB_EIO: a file that cannot be opened or read ("cannot open 'path': <strerror>");
 * NB_EINVAL: bytes that are not a valid IDX file: a wrong magic number, a data type other
 *   than unsigned byte, a wrong number of dimensions, an example dimension of 0, a header
 *   or data shorter than the dimensions say ("truncated") or followed by more bytes, a
 *   corrupt or cut-off gzip stream;
 * NB_ERANGE: dimensions whose product overflows;
 * NB_ESHAPE: a label file whose count differs from the image file's;
 * NB_ENOMEM. Nothing is read past the end of a buffer or a file's data.
 * ------------------------------------------------------------------------------------- */

/**
 * Load images and labels from two IDX files, plain or gzip-compressed; the number of classes
 * is the largest label plus one. PyTorch: torchvision.datasets.MNIST's
 * read_image_file / read_label_file (torchvision's reader, without the PIL images).
 * Ownership: a new dataset, the caller's; free it with nb_dataset_free().
 * Errors: NULL with NB_EINVAL for a NULL path, and the IDX errors above.
 */
NB_API nb_dataset *nb_idx_load(const char *images_path, const char *labels_path);

/**
 * nb_idx_load from two buffers holding the files' bytes (plain or gzip-compressed); made for
 * fuzzing and for data that is not in files. PyTorch: as nb_idx_load.
 * Ownership: a new dataset that owns a copy of the examples; the buffers stay the caller's.
 * Errors: NULL with NB_EINVAL for a NULL buffer with a non-zero size, and the IDX errors
 * above (the messages name "images" and "labels" for the buffers).
 */
NB_API nb_dataset *nb_idx_load_memory(const void *images, size_t images_size, const void *labels,
                                      size_t labels_size);

/**
 * Load MNIST, Fashion-MNIST or another set of the family from dir, by its four standard
 * file names: train-images-idx3-ubyte and train-labels-idx1-ubyte (train), or
 * t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte (test), each plain or with ".gz" (the
 * plain name is tried first, and the ".gz" one when there is no such plain file).
 * PyTorch: torchvision.datasets.FashionMNIST(dir, train=train) (which also downloads; nabla
 * reads only).
 * Ownership: a new dataset, the caller's; free it with nb_dataset_free().
 * Errors: NULL with NB_EINVAL for NULL dir; NB_EIO when neither name of a file can be opened
 * ("cannot open 'dir/train-images-idx3-ubyte' or '...gz': <strerror>"), or the plain one
 * exists but cannot be opened ("cannot open 'dir/train-images-idx3-ubyte': <strerror>"), and
 * the IDX errors above.
 */
NB_API nb_dataset *nb_mnist_load(const char *dir, bool train);

/**
 * Write ds as two IDX files (unsigned byte): images [count, image shape...] and labels
 * [count]; a path ending in ".gz" is written gzip-compressed. Each file is written to a
 * temporary file next to it, synced and renamed over the old one (as nb_safetensors_save),
 * both before either is renamed: a save that fails writing or syncing leaves both old files
 * as they were, and when the labels' rename fails the images go back to the old ones (kept
 * under a second name by a hard link meanwhile), or away where there were none, so the pair
 * on disk is the old one or the new one. Where no hard link can be made (a file system
 * without them; fs.protected_hardlinks for a file of another user), or putting the images
 * back fails too, a failed rename of the labels leaves new images beside old labels, and the
 * error says so (and where the old images are kept).
 * A symbolic link is followed (also to a file not there yet).
 * PyTorch: none (torchvision only reads IDX).
 * Ownership: ds is borrowed.
 * Errors: NB_EINVAL for NULL ds or path, or two paths to one file (checked before anything
 * is written); NB_ERANGE when a size does not fit the format's uint32; NB_EIO when a path
 * exists and is not a regular file, or a file cannot be created, written, synced or renamed;
 * NB_ENOMEM.
 */
NB_API nb_status nb_idx_save(const nb_dataset *ds, const char *images_path,
                             const char *labels_path);

/**
 * Free a dataset. PyTorch: none.
 * Ownership: consumes ds; loaders made from it must be freed first. Errors: none; NULL is a
 * no-op.
 */
NB_API void nb_dataset_free(nb_dataset *ds);

/* ---------------------------------------------------------------------------------------
 * Accessors. PyTorch: len(dataset), dataset.data.shape[1:], len(dataset.classes),
 * dataset.data, dataset.targets. Ownership: none, or borrowed from ds as each says.
 * Errors: none.
 * ------------------------------------------------------------------------------------- */

/** The number of examples; -1 for NULL. */
NB_API int64_t nb_dataset_count(const nb_dataset *ds);
/** The shape of one example ([28, 28] for MNIST); ndim 0 for NULL. */
NB_API nb_shape nb_dataset_image_shape(const nb_dataset *ds);
/** The number of values in one example (784 for MNIST): a batch row; -1 for NULL. */
NB_API int64_t nb_dataset_example_size(const nb_dataset *ds);
/** The number of classes (labels are 0 .. num_classes - 1); -1 for NULL. */
NB_API int64_t nb_dataset_num_classes(const nb_dataset *ds);
/**
 * The examples, count × example_size bytes, example after example, row-major; the labels,
 * count bytes. NULL for NULL. Borrowed from ds, valid while it lives.
 * @{
 */
NB_API const uint8_t *nb_dataset_images(const nb_dataset *ds);
NB_API const uint8_t *nb_dataset_labels(const nb_dataset *ds);
/** @} */

/* ---------------------------------------------------------------------------------------
 * Subsets (for fine-tuning on part of a dataset). Each returns a new, independent dataset
 * holding a copy of the chosen examples, in the order chosen: free it with
 * nb_dataset_free(); ds may be freed before it.
 * ------------------------------------------------------------------------------------- */

/**
 * The examples ds[indices[0]], ..., ds[indices[n - 1]] (repeats allowed), labels unchanged;
 * num_classes is ds's. PyTorch: torch.utils.data.Subset(ds, indices).
 * Ownership: a new dataset, the caller's.
 * Errors: NULL with NB_EINVAL for NULL ds, NULL indices with n > 0, or n < 0; NB_ERANGE for
 * an index outside [0, count); NB_ENOMEM.
 */
NB_API nb_dataset *nb_dataset_subset(const nb_dataset *ds, const int64_t *indices, int64_t n);

/**
 * The examples whose label is one of classes[0..n-1], in their order in ds, relabelled:
 * label classes[k] becomes k, and num_classes is n (classes 0–4 of Fashion-MNIST become a
 * five-class dataset). PyTorch: none (a Subset plus a target_transform).
 * Ownership: a new dataset, the caller's.
 * Errors: NULL with NB_EINVAL for NULL ds, NULL classes, n < 1 or above 256, a class
 * outside [0, num_classes) or given twice; NB_ENOMEM.
 */
NB_API nb_dataset *nb_dataset_select_classes(const nb_dataset *ds, const int *classes, int n);

/* ---------------------------------------------------------------------------------------
 * The data loader: batches of a dataset, an epoch at a time.
 *
 * Each batch is images float32 [B, example_size] with x = byte / 255 (float division, as
 * ToTensor), then, with normalize, x = (x - mean) / std in float32 (as Normalize), and
 * labels float32 [B] holding the class indices. B is batch_size except for a shorter last
 * batch, which drop_last drops.
 *
 * Order, as PyTorch 1.13's DataLoader (batch_sampler over a Sequential- or RandomSampler):
 * - nb_dataloader_begin_epoch is `iter(loader)`: it draws a base seed, random64() of the
 *   loader's generator (the default generator when none is given), with or without shuffle,
 *   so the generator's stream goes on as PyTorch's does.
 * - Without shuffle the order is 0, 1, ..., count - 1.
 * - With shuffle, the first nb_dataloader_next of the epoch draws the order: with no
 *   generator given, a seed random64() % 2^63 from the default generator seeds a fresh
 *   generator, and the order is randperm(count) from it; with a generator, the order is
 *   randperm(count) from that generator, which also draws (and discards) one more
 *   randperm(count) when the epoch's last index has been taken (PyTorch's RandomSampler
 *   runs its loop once more), in the call that finds no full batch left.
 * - With an order set by nb_dataloader_set_order (a sampler's list: PyTorch's sampler=),
 *   the order is that list, drawn from nothing.
 * An epoch left before its end draws nothing more. Drawing never allocates.
 * ------------------------------------------------------------------------------------- */

/** How a loader batches. Zero-initialised fields give PyTorch's defaults, but batch_size. */
typedef struct nb_dataloader_options {
    /** Examples per batch, at least 1 (PyTorch's default is 1). */
    int64_t batch_size;
    /** Draw a new order every epoch. PyTorch: shuffle=True. */
    bool shuffle;
    /** Drop the last batch when it is shorter than batch_size. PyTorch: drop_last=True. */
    bool drop_last;
    /**
     * The generator the base seed and the order are drawn from; NULL: the default
     * generator, through a fresh generator per epoch for the order (PyTorch: generator=None).
     * Borrowed: it must outlive the loader.
     */
    nb_generator *generator;
    /** Apply (x - mean) / std after scaling to [0, 1]. PyTorch: transforms.Normalize. */
    bool normalize;
    float mean; /**< subtracted when normalize (Fashion-MNIST's: 0.2860) */
    float std;  /**< divided by when normalize (Fashion-MNIST's: 0.3530) */
} nb_dataloader_options;

/**
 * A loader over ds; options NULL means batch_size 1, sequential. No epoch is running until
 * nb_dataloader_begin_epoch. PyTorch: torch.utils.data.DataLoader(ds, batch_size, shuffle,
 * drop_last=drop_last, generator=generator) with transforms ToTensor (and Normalize).
 * Ownership: a new loader, the caller's; free it with nb_dataloader_free(). ds (and the
 * generator) are borrowed and must outlive it; options are copied.
 * Errors: NULL with NB_EINVAL for NULL ds, batch_size < 1, shuffle over an empty dataset,
 * normalize with a std that is 0 or not finite or a mean that is not finite; the pending
 * error for a NULL generator while one is pending; NB_ENOMEM.
 */
NB_API nb_dataloader *nb_dataloader_new(const nb_dataset *ds, const nb_dataloader_options *options);

/**
 * Free a loader. PyTorch: none. Ownership: consumes dl (not its dataset or generator).
 * Errors: none; NULL is a no-op.
 */
NB_API void nb_dataloader_free(nb_dataloader *dl);

/**
 * The number of batches an epoch yields: count (or the length of the order set with
 * nb_dataloader_set_order) / batch_size rounded down with drop_last, up without; -1 for NULL.
 * PyTorch: len(loader). Ownership: none. Errors: none.
 */
NB_API int64_t nb_dataloader_num_batches(const nb_dataloader *dl);

/**
 * Start an epoch (ending the one running, if any): draws the base seed as described above.
 * PyTorch: iter(loader). Ownership: none. Errors: NB_EINVAL for NULL dl.
 */
NB_API nb_status nb_dataloader_begin_epoch(nb_dataloader *dl);

/**
 * Take the order of the epochs that begin from now on from indices[0 .. n-1] (copied;
 * repeats allowed), instead of 0 .. count-1: a sampler's list, such as a rank's share of
 * the dataset (nabla/dist.h, nb_dist_sampler). A running epoch keeps its order; each later
 * nb_dataloader_begin_epoch uses the list last set. Batches and drop_last then count n
 * indices, and nb_dataloader_num_batches says so. PyTorch: DataLoader(ds, batch_size,
 * sampler=indices) (iter(loader) still draws its base seed).
 * Ownership: indices is copied; the caller keeps it.
 * Errors: NB_EINVAL for NULL dl, n < 0, NULL indices with n > 0, or a loader that shuffles
 * (PyTorch: "sampler option is mutually exclusive with shuffle"); NB_ERANGE for an index
 * outside [0, count); NB_ENOMEM. The loader is unchanged on error.
 */
NB_API nb_status nb_dataloader_set_order(nb_dataloader *dl, const int64_t *indices, int64_t n);

/**
 * The epoch's next batch as two new tensors, images [B, example_size] and labels [B].
 * Returns B (> 0), or 0 when the epoch has no batch left (then *images and *labels are
 * NULL, and every later call returns 0 until the next epoch), or a negative nb_status.
 * PyTorch: next(iterator).
 * Ownership: *images and *labels are new references (owned by the open scope, if any).
 * Errors: NB_EINVAL for NULL dl, images or labels; NB_ESTATE when no epoch has begun;
 * NB_ENOMEM (the loader is unchanged: the same batch comes next). On error *images and
 * *labels are NULL.
 */
NB_API int64_t nb_dataloader_next(nb_dataloader *dl, nb_tensor **images, nb_tensor **labels);

/**
 * nb_dataloader_next into tensors the caller owns and reuses, so a warm training loop
 * allocates nothing: images holds batch_size rows (shape [batch_size, example_size] or any
 * shape with dim 0 batch_size and as many elements), labels is [batch_size]. The first B
 * rows (and labels) are written and both versions bumped; a shorter last batch leaves the
 * rows past B as they were: use nb_slice(images, 0, 0, B, 1) then, or drop_last.
 * Returns B, 0 at the end of the epoch, or a negative nb_status. PyTorch: next(iterator)
 * (with pinned, reused buffers).
 * Ownership: images and labels are borrowed and changed in place.
 * Errors: NB_EINVAL for NULL dl, images or labels, shapes that do not hold a full batch, or
 * images and labels that share memory (one tensor, or a view of the other); NB_ESTATE when
 * no epoch has begun, or for a leaf that requires grad while grad mode is on. Nothing is
 * written or drawn on error.
 */
NB_API int64_t nb_dataloader_next_into(nb_dataloader *dl, nb_tensor *images, nb_tensor *labels);

/**
 * The dataset indices of the batch last returned (B of them, into *n); NULL with *n = 0
 * before the first batch of an epoch and after its end. PyTorch: the lists the batch sampler
 * yields (list(loader.batch_sampler)).
 * Ownership: borrowed from dl, valid until its next call. Errors: none; NULL for NULL dl
 * (n may be NULL).
 */
NB_API const int64_t *nb_dataloader_batch_indices(const nb_dataloader *dl, int64_t *n);

NB_END_DECLS

#endif /* NABLA_DATA_H */
