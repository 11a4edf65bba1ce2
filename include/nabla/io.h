/**
 * @file
 * nabla — input and output: pictures of the graph (Graphviz DOT) and safetensors checkpoints.
 */
#ifndef NABLA_IO_H
#define NABLA_IO_H

#include "autograd.h"

NB_BEGIN_DECLS

/** What nb_graph_dot draws. Zero-initialised options give the defaults. */
typedef struct nb_dot_options {
    /** Also print each leaf's .grad under it (after backward). */
    bool show_grads;
    /** Graph title (a label on top), or NULL. */
    const char *title;
    /** Tensors to label in the picture, n_names of them; may be NULL. */
    nb_tensor *const *tensors;
    /** Their names: names[i] labels tensors[i]; may be NULL. */
    const char *const *names;
    /** The number of entries of tensors and names. */
    int n_names;
} nb_dot_options;

/**
 * Write the graph behind t as Graphviz DOT to f: the root tensor, its grad_fn nodes by name
 * (AddBackward0, ...), AccumulateGrad nodes and the leaves that require grad, with name (when
 * given) and shape, edges pointing in the direction gradients flow (from the root to the
 * leaves), and, with show_grads, each leaf's gradient. Render with `dot -Tpng`.
 * options may be NULL (the defaults). PyTorch: none (torchviz's make_dot draws the same).
 * Ownership: t, f and options are borrowed; f is not closed.
 * Errors: NB_EINVAL for NULL t or f; NB_ENOMEM (the graph written so far is still closed
 * with "}"); NB_EIO when f's error indicator is set after writing.
 */
NB_API nb_status nb_graph_dot(const nb_tensor *t, FILE *f, const nb_dot_options *options);

/* ---------------------------------------------------------------------------------------
 * safetensors checkpoints: named tensors plus string metadata, in the format of Hugging
 * Face's safetensors (which PyTorch users read with safetensors.torch.load_file):
 *
 *     8 bytes    N, the header length, unsigned little-endian
 *     N bytes    UTF-8 JSON: {"__metadata__": {"format": "pt"},
 *                             "0.weight": {"dtype": "F32", "shape": [3, 4],
 *                                          "data_offsets": [0, 48]}, ...}
 *                padded with spaces to a multiple of 8 bytes
 *     the rest   the data section: each tensor's bytes, row-major, little-endian, where
 *                data_offsets [begin, end) counts from the start of the data section
 *
 *     nb_state_dict *d = nb_state_dict_new();
 *     nb_state_dict_set(d, "0.weight", w);
 *     nb_state_dict_set_metadata(d, "epoch", "3");
 *     if (nb_safetensors_save(d, "model.safetensors") != NB_OK)
 *         fprintf(stderr, "%s\n", nb_last_error()->message);
 *     nb_state_dict *back = nb_safetensors_load("model.safetensors");
 *
 * What nabla writes: every tensor as F32 in the state dict's order, packed with no gaps;
 * "__metadata__" first when the dict has metadata (and left out when it has none); compact
 * JSON (no spaces), keys and strings in UTF-8 as given; at most 100 000 000 header bytes.
 *
 * What nabla reads, and rejects (a one-line error naming the function called, never a crash
 * or a read past the input): the header length must fit in the input and be at most
 * 100 000 000; the header must be JSON (jansson's message with its line and column) holding
 * one object, whose keys are distinct; "__metadata__", when present, is an object of string
 * values (or null: no metadata, as the safetensors library reads it); every other key is a
 * non-empty tensor name mapping to an object with "dtype" (a string), "shape" (an array of at most
 * 8 non-negative integers) and "data_offsets" (two non-negative integers begin <= end), other keys
 * of that object being ignored. The dtype is F32, or F16, BF16 or F64, which are converted to
 * float32 on load (F16 and BF16 exactly, F64 rounded to nearest; PyTorch users save all three); the
 * other safetensors dtypes (BOOL, U8, I8, I16, U16, I32, U32, I64, U64, F8_E5M2, F8_E4M3) are named
 * and rejected, and any other string is an unknown dtype. The product of the shape times the
 * dtype's size must equal end - begin, and the ranges, taken in order of begin, must tile the
 * data section exactly: no range past its end, no overlap, no gap, no unused byte at the end.
 * Tensors come out in the order the header lists them (which may differ from their order in
 * the data section), as leaves that do not require grad.
 * ------------------------------------------------------------------------------------- */

/** The largest header nb_safetensors_load accepts and nb_safetensors_save writes, in bytes. */
#define NB_SAFETENSORS_MAX_HEADER 100000000

/**
 * A byte sink for nb_safetensors_save_to: write all size bytes of data (size > 0) and return
 * 0, or return nonzero to stop the save: a positive errno value (ENOSPC, EIO, ...) is named
 * in the error message, any other nonzero value is reported as is.
 */
typedef int (*nb_write_fn)(void *ctx, const void *data, size_t size);

/**
 * Write d's tensors (as F32) and metadata to the file at path, atomically: the bytes go to a
 * new temporary file in the same directory (path + ".<pid>.<n>.tmp", or ".nabla.<pid>.<n>.tmp"
 * where that name would be too long; created with mode 0666 less the umask), which is
 * flushed to disk with fsync and then renamed over path (and the directory synced). A save
 * that fails at any point — a full file system, a write error, out of memory — removes the
 * temporary file and leaves whatever was at path untouched. When path is a symbolic link,
 * the file it points to is replaced (the link stays; a link to a file not there yet makes
 * that file, as open(path, "wb") does, and links in a circle are NB_EIO).
 * A file that replaces an older one gets the new file's mode, not the old one's.
 * PyTorch: safetensors.torch.save_file(state_dict, path, metadata).
 * Ownership: d and path are borrowed; nothing is kept.
 * Errors: NB_EINVAL for NULL d (a pending error is kept, as for a NULL tensor: d is usually
 * another call's result) or NULL path, a tensor named "__metadata__", or a name, metadata key
 * or value that is not valid UTF-8; NB_ERANGE when the header would be over
 * NB_SAFETENSORS_MAX_HEADER bytes; NB_EIO when path exists and is not a regular file (or a
 * link to one), when the temporary file cannot be created, written, synced or renamed (the
 * message gives path and the system's reason); NB_ENOMEM.
 */
NB_API nb_status nb_safetensors_save(const nb_state_dict *d, const char *path);

/**
 * Write d in the same format through writer(ctx, data, size) calls: the 8-byte length and the
 * header in one call, then each non-empty tensor's bytes in one call each. Nothing is written
 * when d cannot be saved (every check of nb_safetensors_save comes first).
 * PyTorch: safetensors.torch.save(state_dict, metadata) (to bytes).
 * Ownership: d and ctx are borrowed.
 * Errors: as nb_safetensors_save (without its file errors), plus NB_EINVAL for a NULL writer
 * and NB_EIO when writer returns nonzero (the message says after how many of how many bytes).
 */
NB_API nb_status nb_safetensors_save_to(const nb_state_dict *d, nb_write_fn writer, void *ctx);

/**
 * Read the safetensors file at path into a new state dict: its tensors in header order, and
 * its metadata. The file is read once, each tensor's bytes straight into its storage (with no
 * second copy of the file in memory, however large).
 * PyTorch: safetensors.torch.load_file(path) (which also returns its tensors; the metadata
 * comes from safe_open(path).metadata()).
 * Ownership: the caller owns the dict (nb_state_dict_free); the dict holds the only
 * reference to each tensor.
 * Errors: NULL with NB_EINVAL for NULL path or any content rejected as listed above;
 * NB_EIO when the file cannot be opened or read, is not a regular file, or ends early
 * (path and the system's reason); NB_ENOMEM.
 */
NB_API nb_state_dict *nb_safetensors_load(const char *path);

/**
 * nb_safetensors_load from the len bytes at buf (a whole file held in memory).
 * PyTorch: safetensors.torch.load(data).
 * Ownership: buf is borrowed and only read; the dict and its tensors are the caller's.
 * Errors: NULL with NB_EINVAL for NULL buf (with len > 0) or any content rejected as listed
 * above; NB_ENOMEM.
 */
NB_API nb_state_dict *nb_safetensors_load_buffer(const void *buf, size_t len);

NB_END_DECLS

#endif /* NABLA_IO_H */
