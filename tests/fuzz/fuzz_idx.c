/*
 * Fuzz target: nb_idx_load_memory on an image and a label buffer cut from the input, plain,
 * gzip-compressed by the input's own bytes (real gzip files in the corpus), or compressed
 * here with zlib so that every mutation of the plain bytes also goes through inflate.
 *
 * Input: flags, loader, a 16-bit little-endian images length (clamped), then the images
 * bytes and the labels bytes (the rest).
 *   flags bit 0 / bit 1: gzip the images / the labels here (bit 2: as two gzip members);
 *   loader bits 0-2: batch size - 1; bit 3: shuffle; bit 4: normalize; bit 5: drop_last;
 *   bits 6-7: the deflate level (0, 1, 6 or 9); the whole byte seeds the generator.
 *
 * Whatever the input, the loader must not crash, read out of bounds or leak, and either
 * - fail with NB_EINVAL, NB_ERANGE, NB_ESHAPE or NB_ENOMEM and one line
 *   "nb_idx_load_memory: images: ..." or "... labels: ...", or
 * - return a dataset whose count, shape, example size and num_classes (the largest label
 *   plus one) agree with its bytes, which written back as IDX are the plain input itself
 *   (or, for gzip from the input, load again to the same dataset), and whose first two
 *   batches are ToTensor's values of the examples the loader says it took.
 * Compressing here must change nothing: the plain buffers load to the same dataset, or fail
 * with the same error.
 */
#define FUZZ_NAME "fuzz_idx"
#include "fuzz.h"

#include <zlib.h>

typedef struct buf {
    uint8_t *p;
    size_t n;
} buf;

/* A well-formed gzip file of src (one or two members), or false when zlib has no memory. */
static bool gzip_of(const uint8_t *src, size_t n, int level, bool two, buf *out)
{
    const size_t part[2] = {two ? n / 2 : n, two ? n - n / 2 : 0};
    out->p = NULL;
    out->n = 0;
    for (int k = 0; k < (two ? 2 : 1); k++) {
        z_stream z = {0};
        /* a small window and memLevel: cheap to set up, as each input pays for it */
        if (deflateInit2(&z, level, Z_DEFLATED, 16 + 9, 1, Z_DEFAULT_STRATEGY) != Z_OK)
            return false;
        const size_t bound = deflateBound(&z, (uLong)part[k]);
        uint8_t *grown = realloc(out->p, out->n + bound);
        if (!grown) {
            deflateEnd(&z);
            return false;
        }
        out->p = grown;
        z.next_in = (Bytef *)(uintptr_t)(src + (k ? part[0] : 0));
        z.avail_in = (uInt)part[k];
        z.next_out = out->p + out->n;
        z.avail_out = (uInt)bound;
        int rc = deflate(&z, Z_FINISH);
        out->n += bound - z.avail_out;
        deflateEnd(&z);
        CHECK(rc == Z_STREAM_END);
    }
    return true;
}

static bool is_gzip(const buf *b)
{
    return b->n >= 2 && b->p[0] == 0x1f && b->p[1] == 0x8b;
}

static void check_error(void)
{
    const nb_status code = nb_last_error()->code;
    CHECK(code == NB_EINVAL || code == NB_ERANGE || code == NB_ESHAPE || code == NB_ENOMEM);
    CHECK(fuzz_one_line("nb_idx_load_memory: "));
    CHECK(code == NB_ENOMEM || fuzz_one_line("nb_idx_load_memory: images: ") ||
          fuzz_one_line("nb_idx_load_memory: labels: "));
}

static void put_u32be(uint8_t *b, int64_t v)
{
    b[0] = (uint8_t)(v >> 24);
    b[1] = (uint8_t)(v >> 16);
    b[2] = (uint8_t)(v >> 8);
    b[3] = (uint8_t)v;
}

/* ds written as the two IDX files of unsigned bytes. */
static void idx_of(const nb_dataset *ds, buf *im, buf *lb)
{
    const nb_shape s = nb_dataset_image_shape(ds);
    const size_t count = (size_t)nb_dataset_count(ds);
    const size_t bytes = count * (size_t)nb_dataset_example_size(ds);
    im->n = 4 + 4 * (size_t)(s.ndim + 1) + bytes;
    lb->n = 8 + count;
    im->p = malloc(im->n);
    lb->p = malloc(lb->n);
    CHECK(im->p && lb->p);
    uint8_t head[4] = {0, 0, 0x08, (uint8_t)(s.ndim + 1)};
    memcpy(im->p, head, 4);
    put_u32be(im->p + 4, (int64_t)count);
    for (int i = 0; i < s.ndim; i++) put_u32be(im->p + 8 + 4 * i, s.dims[i]);
    memcpy(im->p + im->n - bytes, nb_dataset_images(ds), bytes);
    head[3] = 1;
    memcpy(lb->p, head, 4);
    put_u32be(lb->p + 4, (int64_t)count);
    memcpy(lb->p + 8, nb_dataset_labels(ds), count);
}

static bool same_bytes(const buf *a, const buf *b)
{
    return a->n == b->n && (!a->n || !memcmp(a->p, b->p, a->n));
}

static bool same_dataset(const nb_dataset *a, const nb_dataset *b)
{
    buf ai, al, bi, bl;
    idx_of(a, &ai, &al);
    idx_of(b, &bi, &bl);
    bool same = nb_dataset_num_classes(a) == nb_dataset_num_classes(b) && same_bytes(&ai, &bi) &&
                same_bytes(&al, &bl);
    free(ai.p);
    free(al.p);
    free(bi.p);
    free(bl.p);
    return same;
}

/* What the accessors say agrees with the bytes. */
static void check_dataset(const nb_dataset *ds)
{
    const int64_t count = nb_dataset_count(ds), example = nb_dataset_example_size(ds);
    const nb_shape s = nb_dataset_image_shape(ds);
    CHECK(count >= 0 && count <= UINT32_MAX);
    CHECK(s.ndim >= 1 && s.ndim < NB_MAX_DIMS);
    int64_t product = 1;
    for (int i = 0; i < s.ndim; i++) {
        CHECK(s.dims[i] >= 1 && s.dims[i] <= UINT32_MAX);
        product *= s.dims[i];
    }
    CHECK(example == product);
    CHECK(nb_dataset_images(ds) && nb_dataset_labels(ds));
    int64_t classes = 0;
    for (int64_t i = 0; i < count; i++)
        if (nb_dataset_labels(ds)[i] >= classes) classes = nb_dataset_labels(ds)[i] + 1;
    CHECK(nb_dataset_num_classes(ds) == classes);
}

/* The batches of one epoch's start: sizes, indices, and ToTensor's (and Normalize's) values. */
static void check_batches(const nb_dataset *ds, uint8_t loader)
{
    nb_generator *gen = nb_generator_new(loader);
    CHECK(gen);
    nb_dataloader_options o = {.batch_size = 1 + (loader & 7),
                               .shuffle = loader & 8,
                               .normalize = loader & 16,
                               .drop_last = loader & 32,
                               .generator = gen,
                               .mean = 0.25f,
                               .std = 0.5f};
    const int64_t count = nb_dataset_count(ds), example = nb_dataset_example_size(ds);
    nb_dataloader *dl = nb_dataloader_new(ds, &o);
    if (o.shuffle && count == 0) {
        CHECK(!dl && nb_last_error()->code == NB_EINVAL && fuzz_one_line("nb_dataloader_new: "));
        nb_generator_free(gen);
        return;
    }
    CHECK(dl);
    const int64_t batches = (count + (o.drop_last ? 0 : o.batch_size - 1)) / o.batch_size;
    CHECK(nb_dataloader_num_batches(dl) == batches);
    CHECK(nb_dataloader_begin_epoch(dl) == NB_OK);
    int64_t seen = 0;
    for (int k = 0; k < 2 && example <= (1 << 18) / o.batch_size; k++) {
        nb_tensor *x, *y;
        const int64_t b = nb_dataloader_next(dl, &x, &y);
        const int64_t left = count - seen;
        CHECK(b == (left >= o.batch_size ? o.batch_size : o.drop_last ? 0 : left));
        if (b == 0) {
            CHECK(!x && !y);
            break;
        }
        int64_t n;
        const int64_t *idx = nb_dataloader_batch_indices(dl, &n);
        CHECK(idx && n == b);
        CHECK(nb_tensor_ndim(x) == 2 && nb_tensor_shape(x)[0] == b &&
              nb_tensor_shape(x)[1] == example);
        CHECK(nb_tensor_ndim(y) == 1 && nb_tensor_shape(y)[0] == b);
        const float *xd = nb_tensor_data_const(x), *yd = nb_tensor_data_const(y);
        for (int64_t r = 0; r < b; r++) {
            CHECK(idx[r] >= 0 && idx[r] < count);
            CHECK(o.shuffle || idx[r] == seen + r);
            const uint8_t *src = nb_dataset_images(ds) + idx[r] * example;
            for (int64_t j = 0; j < example; j++) {
                float v = (float)src[j] / 255.0f;
                if (o.normalize) v = (v - o.mean) / o.std;
                CHECK(xd[r * example + j] == v);
            }
            CHECK(yd[r] == (float)nb_dataset_labels(ds)[idx[r]]);
        }
        seen += b;
        nb_release(x);
        nb_release(y);
    }
    nb_dataloader_free(dl);
    nb_generator_free(gen);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 4) return 0;
    const uint8_t flags = data[0], loader = data[1];
    size_t n_images = (size_t)data[2] | (size_t)data[3] << 8;
    data += 4;
    size = size - 4;
    if (n_images > size) n_images = size;
    /* the plain files, and what the loader is given */
    buf plain[2] = {{(uint8_t *)(uintptr_t)data, n_images},
                    {(uint8_t *)(uintptr_t)(data + n_images), size - n_images}};
    buf given[2] = {plain[0], plain[1]};
    static const int levels[4] = {0, 1, 6, 9};
    bool known[2], transparent = false;
    for (int f = 0; f < 2; f++) {
        known[f] = !is_gzip(&plain[f]);
        if (flags & (1 << f)) {
            if (!gzip_of(plain[f].p, plain[f].n, levels[loader >> 6], flags & 4, &given[f]))
                goto out; /* no memory for zlib: nothing to test */
            /* the loader does not unwrap twice: gzip of gzip is not the same as gzip */
            transparent = known[f];
            known[f] = true;
        }
    }
    if ((flags & 3) == 3) transparent = !is_gzip(&plain[0]) && !is_gzip(&plain[1]);

    nb_error_clear();
    nb_dataset *ds = nb_idx_load_memory(given[0].n ? given[0].p : NULL, given[0].n,
                                        given[1].n ? given[1].p : NULL, given[1].n);
    char message[512];
    snprintf(message, sizeof message, "%s", nb_last_error()->message);
    const nb_status code = nb_last_error()->code;
    if (ds) {
        CHECK(code == NB_OK);
        check_dataset(ds);
        buf im, lb;
        idx_of(ds, &im, &lb);
        CHECK(!known[0] || same_bytes(&im, &plain[0]));
        CHECK(!known[1] || same_bytes(&lb, &plain[1]));
        if (!known[0] || !known[1]) {
            nb_dataset *back = nb_idx_load_memory(im.p, im.n, lb.p, lb.n);
            CHECK(back && same_dataset(ds, back));
            nb_dataset_free(back);
        }
        free(im.p);
        free(lb.p);
        check_batches(ds, loader);
    } else {
        check_error();
    }
    if (transparent && code != NB_ENOMEM) {
        /* compressing is transparent: the plain buffers give the same dataset or error */
        nb_error_clear();
        nb_dataset *again = nb_idx_load_memory(plain[0].p, plain[0].n, plain[1].p, plain[1].n);
        const nb_error *e = nb_last_error();
        if (ds)
            CHECK(again ? same_dataset(ds, again) : e->code == NB_ENOMEM);
        else
            CHECK(!again &&
                  (e->code == NB_ENOMEM || (e->code == code && !strcmp(e->message, message))));
        nb_dataset_free(again);
    }
    nb_dataset_free(ds);
out:
    for (int f = 0; f < 2; f++)
        if (given[f].p != plain[f].p) free(given[f].p);
    return 0;
}
