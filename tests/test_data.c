/*
 * Datasets and the data loader: IDX round trips (plain and gzip, files and buffers), every
 * bad-file case with its message, batch values against PyTorch's ToTensor and Normalize,
 * drop_last, sequential and shuffled order against PyTorch's DataLoader (data/data_ref.h,
 * made by data/gen_data.py), reused batch tensors without allocation, subsets, the committed
 * Fashion-MNIST subset, the real dataset when it is installed, and allocation failure.
 *
 * Bad files are made here from bytes, in a temporary directory; gzip members are built by
 * hand (stored deflate blocks and a CRC-32), so the test needs no zlib of its own.
 */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testutil.h"

#include "data/data_ref.h"

#define FASHION_DIR "/usr/share/datasets/fashion-mnist"
#define MINI_DIR    NB_TEST_DATA_DIR "/fashion-mini"

/* ---- bytes, files and gzip members ---------------------------------------------------- */

typedef struct bytes {
    uint8_t b[1 << 14];
    size_t n;
} bytes;

static void put(bytes *o, const void *p, size_t n)
{
    assert_true(o->n + n <= sizeof o->b);
    memcpy(o->b + o->n, p, n);
    o->n += n;
}

static void put_u32be(bytes *o, uint32_t v)
{
    uint8_t b[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
    put(o, b, 4);
}

static void put_u32le(bytes *o, uint32_t v)
{
    uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    put(o, b, 4);
}

/* An IDX file: head (two zeros, type, ndim), the dims, then data bytes of value i * 7. */
static void idx_file(bytes *o, const uint8_t head[4], int ndims, const uint32_t *dims, size_t data)
{
    o->n = 0;
    put(o, head, 4);
    for (int i = 0; i < ndims; i++) put_u32be(o, dims[i]);
    for (size_t i = 0; i < data; i++) {
        uint8_t v = (uint8_t)(i * 7);
        put(o, &v, 1);
    }
}

static uint32_t crc32_of(const uint8_t *p, size_t n)
{
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1u)));
    }
    return ~c;
}

/* Append one gzip member holding p[0..n) in stored (uncompressed) deflate blocks. */
static void put_gzip_member(bytes *o, const uint8_t *p, size_t n)
{
    static const uint8_t header[10] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff};
    put(o, header, sizeof header);
    size_t done = 0;
    do {
        size_t len = n - done < 65535 ? n - done : 65535;
        uint8_t block[5] = {(uint8_t)(done + len == n), (uint8_t)len, (uint8_t)(len >> 8),
                            (uint8_t)~len, (uint8_t)(~len >> 8)};
        put(o, block, 5);
        put(o, p + done, len);
        done += len;
    } while (done < n);
    put_u32le(o, crc32_of(p, n));
    put_u32le(o, (uint32_t)n);
}

static void gzip_of(bytes *o, const bytes *plain)
{
    o->n = 0;
    put_gzip_member(o, plain->b, plain->n);
}

static char tmpdir[64];

static int group_setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/nabla-test-data-XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    DIR *d = opendir(tmpdir);
    if (!d) return -1;
    char path[512];
    for (struct dirent *e; (e = readdir(d));) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        snprintf(path, sizeof path, "%s/%s", tmpdir, e->d_name);
        if (remove(path) != 0) rmdir(path);
    }
    closedir(d);
    return rmdir(tmpdir);
}

/* The path of name in the temporary directory (one of a few rotating buffers). */
static const char *tmp_path(const char *name)
{
    static char paths[4][512];
    static int next;
    char *p = paths[next++ % 4];
    snprintf(p, sizeof paths[0], "%s/%s", tmpdir, name);
    return p;
}

static const char *write_file(const char *name, const bytes *data)
{
    const char *path = tmp_path(name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data->b, 1, data->n, f), data->n);
    assert_int_equal(fclose(f), 0);
    return path;
}

static void read_file(const char *path, bytes *o)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    o->n = fread(o->b, 1, sizeof o->b, f);
    assert_true(feof(f));
    fclose(f);
}

static void assert_message(nb_status code, const char *want)
{
    const nb_error *e = nb_last_error();
    if (e->code != code || strcmp(e->message, want) != 0)
        fail_msg("got %s \"%s\"\n  want %s \"%s\"", nb_status_name(e->code), e->message,
                 nb_status_name(code), want);
}

/* A good pair: images [2, 3, 3], labels [2] = {1, 4}. */
static const uint8_t good_head3[4] = {0, 0, 8, 3}, good_head1[4] = {0, 0, 8, 1};
static const uint32_t good_dims[3] = {2, 3, 3};

static void good_images(bytes *o)
{
    idx_file(o, good_head3, 3, good_dims, 18);
}

static void good_labels(bytes *o)
{
    static const uint32_t n = 2;
    idx_file(o, good_head1, 1, &n, 0);
    uint8_t l[2] = {1, 4};
    put(o, l, 2);
}

static void assert_good_dataset(const nb_dataset *ds)
{
    assert_non_null(ds);
    assert_int_equal(nb_dataset_count(ds), 2);
    nb_shape s = nb_dataset_image_shape(ds);
    assert_int_equal(s.ndim, 2);
    assert_int_equal(s.dims[0], 3);
    assert_int_equal(s.dims[1], 3);
    assert_int_equal(nb_dataset_example_size(ds), 9);
    assert_int_equal(nb_dataset_num_classes(ds), 5);
    const uint8_t *im = nb_dataset_images(ds), *lb = nb_dataset_labels(ds);
    for (int i = 0; i < 18; i++) assert_int_equal(im[i], (uint8_t)(i * 7));
    assert_int_equal(lb[0], 1);
    assert_int_equal(lb[1], 4);
}

/* ---- IDX round trips ------------------------------------------------------------------ */

static void test_idx_round_trip(void **state)
{
    (void)state;
    static bytes im, lb, gim, glb, back;
    good_images(&im);
    good_labels(&lb);

    nb_dataset *ds = nb_idx_load_memory(im.b, im.n, lb.b, lb.n);
    assert_good_dataset(ds);

    /* plain files: byte for byte what was read */
    const char *ip = tmp_path("rt-images"), *lp = tmp_path("rt-labels");
    assert_int_equal(nb_idx_save(ds, ip, lp), NB_OK);
    read_file(ip, &back);
    assert_int_equal(back.n, im.n);
    assert_memory_equal(back.b, im.b, im.n);
    read_file(lp, &back);
    assert_int_equal(back.n, lb.n);
    assert_memory_equal(back.b, lb.b, lb.n);
    nb_dataset *again = nb_idx_load(ip, lp);
    assert_good_dataset(again);
    nb_dataset_free(again);

    /* gzip files, by the name's ".gz"; read back from the files and from memory */
    ip = tmp_path("rt-images.gz");
    lp = tmp_path("rt-labels.gz");
    assert_int_equal(nb_idx_save(ds, ip, lp), NB_OK);
    read_file(ip, &gim);
    read_file(lp, &glb);
    assert_true(gim.n > 2 && gim.b[0] == 0x1f && gim.b[1] == 0x8b);
    again = nb_idx_load(ip, lp);
    assert_good_dataset(again);
    nb_dataset_free(again);
    again = nb_idx_load_memory(gim.b, gim.n, glb.b, glb.n);
    assert_good_dataset(again);
    nb_dataset_free(again);

    /* hand-made gzip, and a file of two gzip members (as gunzip reads them) */
    gzip_of(&gim, &im);
    again = nb_idx_load_memory(gim.b, gim.n, lb.b, lb.n);
    assert_good_dataset(again);
    nb_dataset_free(again);
    gim.n = 0;
    put_gzip_member(&gim, im.b, 7);
    put_gzip_member(&gim, im.b + 7, im.n - 7);
    again = nb_idx_load(write_file("two-members.gz", &gim), write_file("lb", &lb));
    assert_good_dataset(again);
    nb_dataset_free(again);

    /* zero bytes after each member, as Python's gzip skips them; in a file, past a read chunk */
    static const uint8_t zeros[5] = {0};
    gim.n = 0;
    put_gzip_member(&gim, im.b, 7);
    put(&gim, zeros, 5);
    put_gzip_member(&gim, im.b + 7, im.n - 7);
    put(&gim, zeros, 3);
    again = nb_idx_load_memory(gim.b, gim.n, lb.b, lb.n);
    assert_good_dataset(again);
    nb_dataset_free(again);
    const char *padded = write_file("padded.gz", &gim);
    FILE *f = fopen(padded, "ab");
    assert_non_null(f);
    for (int i = 0; i < 100000; i++) assert_int_equal(fputc(0, f), 0);
    assert_int_equal(fclose(f), 0);
    again = nb_idx_load(padded, write_file("lb", &lb));
    assert_good_dataset(again);
    nb_dataset_free(again);

    /* the standard names, plain for one file and .gz for the other */
    mkdir(tmp_path("mnist"), 0700);
    assert_int_equal(nb_idx_save(ds, tmp_path("mnist/t10k-images-idx3-ubyte"),
                                 tmp_path("mnist/t10k-labels-idx1-ubyte.gz")),
                     NB_OK);
    again = nb_mnist_load(tmp_path("mnist"), false);
    assert_good_dataset(again);
    nb_dataset_free(again);
    remove(tmp_path("mnist/t10k-images-idx3-ubyte"));
    remove(tmp_path("mnist/t10k-labels-idx1-ubyte.gz"));

    /* an empty dataset is a valid one */
    static const uint32_t zero[3] = {0, 28, 28};
    idx_file(&im, good_head3, 3, zero, 0);
    idx_file(&lb, good_head1, 1, zero, 0);
    nb_dataset *empty = nb_idx_load_memory(im.b, im.n, lb.b, lb.n);
    assert_non_null(empty);
    assert_int_equal(nb_dataset_count(empty), 0);
    assert_int_equal(nb_dataset_example_size(empty), 784);
    assert_int_equal(nb_dataset_num_classes(empty), 0);
    nb_dataset_free(empty);
    nb_dataset_free(ds);
    nb_dataset_free(NULL);
}

/* ---- bad files ------------------------------------------------------------------------ */

typedef struct bad_case {
    const char *name;
    int labels;      /* the bad file is the label file (the other one is good) */
    uint8_t head[4]; /* two zero bytes, data type, number of dimensions */
    int ndims;       /* dims written */
    uint32_t dims[9];
    size_t data; /* data bytes written */
    size_t cut;  /* when nonzero, only the first cut bytes are kept */
    nb_status code;
    const char *cause; /* after "fn: <name>: " */
} bad_case;

static const bad_case bad_cases[] = {
    {"wrong magic",
     0,
     {1, 2, 8, 3},
     3,
     {2, 3, 3},
     18,
     0,
     NB_EINVAL,
     "not an IDX file (magic number 0x01020803; an IDX file starts with two zero bytes)"},
    {"float32 data",
     0,
     {0, 0, 0x0d, 3},
     3,
     {2, 3, 3},
     18,
     0,
     NB_EINVAL,
     "data type 0x0d (float32) is not supported: MNIST files hold 0x08 (unsigned byte)"},
    {"unknown data type",
     0,
     {0, 0, 0x42, 3},
     3,
     {2, 3, 3},
     18,
     0,
     NB_EINVAL,
     "data type 0x42 is not supported: MNIST files hold 0x08 (unsigned byte)"},
    {"1-D images",
     0,
     {0, 0, 8, 1},
     1,
     {2},
     2,
     0,
     NB_EINVAL,
     "an image file has 2 to 8 dimensions, this one has 1"},
    {"9-D images",
     0,
     {0, 0, 8, 9},
     9,
     {2, 1, 1, 1, 1, 1, 1, 1, 1},
     2,
     0,
     NB_EINVAL,
     "an image file has 2 to 8 dimensions, this one has 9"},
    {"header cut short",
     0,
     {0, 0, 8, 3},
     3,
     {2, 3, 3},
     18,
     3,
     NB_EINVAL,
     "truncated: 3 bytes, not even an IDX header"},
    {"dimensions cut short",
     0,
     {0, 0, 8, 3},
     3,
     {2, 3, 3},
     18,
     12,
     NB_EINVAL,
     "truncated: the header of 3 dimensions needs 16 bytes, found 12"},
    {"data cut short",
     0,
     {0, 0, 8, 3},
     3,
     {2, 3, 3},
     10,
     0,
     NB_EINVAL,
     "truncated: dimensions [2, 3, 3] need 18 bytes of data, found 10"},
    {"data too long",
     0,
     {0, 0, 8, 3},
     3,
     {2, 3, 3},
     19,
     0,
     NB_EINVAL,
     "dimensions [2, 3, 3] need 18 bytes of data, found more"},
    {"huge dimensions, no data",
     0,
     {0, 0, 8, 3},
     3,
     {65536, 65536, 65536},
     5,
     0,
     NB_EINVAL,
     "truncated: dimensions [65536, 65536, 65536] need 281474976710656 bytes of data, found 5"},
    {"dimensions that overflow",
     0,
     {0, 0, 8, 3},
     3,
     {0xffffffffu, 0xffffffffu, 0xffffffffu},
     0,
     0,
     NB_ERANGE,
     "dimensions [4294967295, 4294967295, 4294967295] overflow"},
    {"a count that overflows",
     0,
     {0, 0, 8, 2},
     2,
     {0xffffffffu, 0xffffffffu},
     0,
     0,
     NB_ERANGE,
     "dimensions [4294967295, 4294967295] overflow"},
    {"an empty example",
     0,
     {0, 0, 8, 3},
     3,
     {2, 0, 3},
     0,
     0,
     NB_EINVAL,
     "dimensions [2, 0, 3]: an example cannot be empty"},
    {"2-D labels",
     1,
     {0, 0, 8, 2},
     2,
     {2, 1},
     2,
     0,
     NB_EINVAL,
     "a label file has 1 dimension, this one has 2"},
    {"labels with a wrong magic",
     1,
     {0, 8, 8, 1},
     1,
     {2},
     2,
     0,
     NB_EINVAL,
     "not an IDX file (magic number 0x00080801; an IDX file starts with two zero bytes)"},
    {"labels cut short",
     1,
     {0, 0, 8, 1},
     1,
     {2},
     1,
     0,
     NB_EINVAL,
     "truncated: dimensions [2] need 2 bytes of data, found 1"},
    {"more labels than images",
     1,
     {0, 0, 8, 1},
     1,
     {3},
     3,
     0,
     NB_ESHAPE,
     "3 labels for the 2 images of "},
};

/* The two files of a case, plain or each wrapped in a gzip member. */
static void case_files(const bad_case *c, bool gz, bytes *im, bytes *lb)
{
    static bytes bad, plain;
    idx_file(&bad, c->head, c->ndims, c->dims, c->data);
    if (c->cut) bad.n = c->cut;
    if (c->labels) {
        good_images(&plain);
        *lb = bad;
    } else {
        good_labels(&plain);
        *im = bad;
    }
    bytes *good = c->labels ? im : lb;
    *good = plain;
    if (gz) {
        gzip_of(&plain, im);
        *im = plain;
        gzip_of(&plain, lb);
        *lb = plain;
    }
}

static void test_bad_files(void **state)
{
    (void)state;
    static bytes im, lb;
    char want[1024];
    for (size_t k = 0; k < sizeof bad_cases / sizeof bad_cases[0]; k++) {
        const bad_case *c = &bad_cases[k];
        for (int gz = 0; gz < 2; gz++) {
            case_files(c, gz, &im, &lb);
            const char *ip = write_file(gz ? "bad-images.gz" : "bad-images", &im);
            const char *lp = write_file(gz ? "bad-labels.gz" : "bad-labels", &lb);
            print_message("%s%s\n", c->name, gz ? " (gzip)" : "");

            nb_error_clear();
            assert_null(nb_idx_load(ip, lp));
            if (c->code == NB_ESHAPE)
                snprintf(want, sizeof want, "nb_idx_load: '%s': %s'%s'", lp, c->cause, ip);
            else
                snprintf(want, sizeof want, "nb_idx_load: '%s': %s", c->labels ? lp : ip, c->cause);
            assert_message(c->code, want);

            nb_error_clear();
            assert_null(nb_idx_load_memory(im.b, im.n, lb.b, lb.n));
            snprintf(want, sizeof want, "nb_idx_load_memory: %s: %s%s",
                     c->labels ? "labels" : "images", c->cause,
                     c->code == NB_ESHAPE ? "images" : "");
            assert_message(c->code, want);
        }
    }
}

/* Broken gzip streams around a good IDX file. */
static void test_bad_gzip(void **state)
{
    (void)state;
    static bytes im, lb, gz;
    good_images(&im);
    good_labels(&lb);
    const char *lp = write_file("gz-labels", &lb);
    char want[1024];
    struct {
        const char *name;
        const char *cause;
    } cases[] = {
        {"an invalid block type", "corrupt gzip stream (invalid block type)"},
        {"a wrong CRC", "corrupt gzip stream (incorrect data check)"},
        {"a stream cut in its data", "truncated gzip stream"},
        {"a stream cut in its trailer", "truncated gzip stream"},
        {"an unknown compression method", "corrupt gzip stream (unknown compression method)"},
        {"garbage after the member", "corrupt gzip stream (incorrect header check)"},
        {"garbage after zero padding", "corrupt gzip stream (incorrect header check)"},
        {"a length in the trailer that lies", "corrupt gzip stream (incorrect length check)"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        gzip_of(&gz, &im);
        switch (k) {
        case 0:
            gz.b[10] = 0x07; /* BFINAL, BTYPE 11 */
            break;
        case 1:
            gz.b[gz.n - 8] ^= 0x01;
            break;
        case 2:
            gz.n = 10 + 5 + 9;
            break;
        case 3:
            gz.n -= 3;
            break;
        case 4:
            gz.b[2] = 9;
            break;
        case 5: {
            static const uint8_t junk[4] = {'j', 'u', 'n', 'k'};
            put(&gz, junk, sizeof junk);
            break;
        }
        case 6: { /* zeros are skipped, what follows them is read as a member */
            static const uint8_t junk[6] = {0, 0, 'j', 'u', 'n', 'k'};
            put(&gz, junk, sizeof junk);
            break;
        }
        case 7: /* ISIZE 0xffffffff: the size hint must not be trusted past its bound */
            memset(gz.b + gz.n - 4, 0xff, 4);
            break;
        }
        print_message("%s\n", cases[k].name);
        const char *ip = write_file("gz-images.gz", &gz);
        nb_error_clear();
        assert_null(nb_idx_load(ip, lp));
        snprintf(want, sizeof want, "nb_idx_load: '%s': %s", ip, cases[k].cause);
        assert_message(NB_EINVAL, want);
        nb_error_clear();
        assert_null(nb_idx_load_memory(gz.b, gz.n, lb.b, lb.n));
        snprintf(want, sizeof want, "nb_idx_load_memory: images: %s", cases[k].cause);
        assert_message(NB_EINVAL, want);
    }
}

static void test_load_errors(void **state)
{
    (void)state;
    static bytes im, lb;
    good_images(&im);
    good_labels(&lb);
    const char *lp = write_file("ok-labels", &lb);
    char want[1024];

    const char *missing = tmp_path("no-such-file");
    assert_null(nb_idx_load(missing, lp));
    snprintf(want, sizeof want, "nb_idx_load: cannot open '%s': No such file or directory",
             missing);
    assert_message(NB_EIO, want);

    /* a directory opens, then fails to read */
    mkdir(tmp_path("a-dir"), 0700);
    const char *dir = tmp_path("a-dir");
    assert_null(nb_idx_load(dir, lp));
    snprintf(want, sizeof want, "nb_idx_load: '%s': read error: Is a directory", dir);
    assert_message(NB_EIO, want);

    assert_null(nb_mnist_load(dir, true));
    snprintf(want, sizeof want,
             "nb_mnist_load: cannot open '%s/train-images-idx3-ubyte' or "
             "'%s/train-images-idx3-ubyte.gz': No such file or directory",
             dir, dir);
    assert_message(NB_EIO, want);
    /* the images are there, the labels are not */
    nb_dataset *ds = nb_idx_load_memory(im.b, im.n, lb.b, lb.n);
    assert_non_null(ds);
    assert_int_equal(
        nb_idx_save(ds, tmp_path("a-dir/train-images-idx3-ubyte.gz"), tmp_path("unused-labels")),
        NB_OK);
    assert_null(nb_mnist_load(dir, true));
    snprintf(want, sizeof want,
             "nb_mnist_load: cannot open '%s/train-labels-idx1-ubyte' or "
             "'%s/train-labels-idx1-ubyte.gz': No such file or directory",
             dir, dir);
    assert_message(NB_EIO, want);
    /* the plain name fails for another reason than being missing: the .gz is not tried, and
       the message names only the file that was */
    const char *loop = tmp_path("a-dir/train-images-idx3-ubyte");
    assert_int_equal(symlink("train-images-idx3-ubyte", loop), 0);
    assert_null(nb_mnist_load(dir, true));
    snprintf(want, sizeof want,
             "nb_mnist_load: cannot open '%s/train-images-idx3-ubyte': Too many levels of "
             "symbolic links",
             dir);
    assert_message(NB_EIO, want);
    remove(loop);
    remove(tmp_path("a-dir/train-images-idx3-ubyte.gz"));

    nb_error_clear();
    assert_null(nb_idx_load(NULL, lp));
    assert_message(NB_EINVAL, "nb_idx_load: argument 'images_path' is NULL");
    assert_null(nb_idx_load(lp, NULL));
    assert_message(NB_EINVAL, "nb_idx_load: argument 'labels_path' is NULL");
    assert_null(nb_mnist_load(NULL, true));
    assert_message(NB_EINVAL, "nb_mnist_load: argument 'dir' is NULL");
    assert_null(nb_idx_load_memory(NULL, 4, lb.b, lb.n));
    assert_message(NB_EINVAL, "nb_idx_load_memory: argument 'images' is NULL");
    assert_null(nb_idx_load_memory(im.b, im.n, NULL, 1));
    assert_message(NB_EINVAL, "nb_idx_load_memory: argument 'labels' is NULL");
    assert_null(nb_idx_load_memory(NULL, 0, NULL, 0));
    assert_message(NB_EINVAL, "nb_idx_load_memory: images: truncated: 0 bytes, not even an IDX "
                              "header");
    /* an empty buffer may be NULL: read as no bytes (not NULL + 0, which is undefined) */
    assert_null(nb_idx_load_memory(im.b, im.n, NULL, 0));
    assert_message(NB_EINVAL, "nb_idx_load_memory: labels: truncated: 0 bytes, not even an IDX "
                              "header");

    const char *nowhere = tmp_path("no-dir/images");
    assert_int_equal(nb_idx_save(ds, nowhere, lp), NB_EIO);
    snprintf(want, sizeof want,
             "nb_idx_save: cannot create a temporary file next to '%s': No such file or directory",
             nowhere);
    assert_message(NB_EIO, want);
    assert_int_equal(nb_idx_save(ds, NULL, lp), NB_EINVAL);
    assert_message(NB_EINVAL, "nb_idx_save: argument 'images_path' is NULL");
    assert_int_equal(nb_idx_save(NULL, lp, lp), NB_EINVAL);
    assert_message(NB_EINVAL, "nb_idx_save: argument 'ds' is NULL");
    nb_dataset_free(ds);
}

/* ---- a dataset of n examples whose bytes name them ------------------------------------ */

/* n examples of d bytes; example i holds (i + j) % 256 at j; label i % 10 (or all if n < 10). */
static nb_dataset *indexed_dataset(int64_t n, uint32_t d)
{
    size_t size = 4 + 8 + (size_t)n * d;
    uint8_t *im = malloc(size), *lb = malloc(8 + (size_t)n);
    assert_non_null(im);
    assert_non_null(lb);
    const uint8_t h3[4] = {0, 0, 8, 2}, h1[4] = {0, 0, 8, 1};
    memcpy(im, h3, 4);
    memcpy(lb, h1, 4);
    for (int k = 0; k < 4; k++) {
        im[4 + k] = (uint8_t)((uint64_t)n >> (24 - 8 * k));
        im[8 + k] = (uint8_t)(d >> (24 - 8 * k));
        lb[4 + k] = im[4 + k];
    }
    for (int64_t i = 0; i < n; i++) {
        for (uint32_t j = 0; j < d; j++) im[12 + (size_t)i * d + j] = (uint8_t)((i + j) % 256);
        lb[8 + i] = (uint8_t)(i % 10);
    }
    nb_dataset *ds = nb_idx_load_memory(im, size, lb, 8 + (size_t)n);
    free(im);
    free(lb);
    assert_non_null(ds);
    return ds;
}

/* The number of entries of the temporary directory whose names start with prefix. */
static int count_entries(const char *prefix)
{
    DIR *d = opendir(tmpdir);
    assert_non_null(d);
    int n = 0;
    for (struct dirent *e; (e = readdir(d));) n += !strncmp(e->d_name, prefix, strlen(prefix));
    closedir(d);
    return n;
}

static void assert_file_is(const char *path, const bytes *want)
{
    static bytes now;
    read_file(path, &now);
    assert_int_equal(now.n, want->n);
    assert_memory_equal(now.b, want->b, want->n);
}

/*
 * nb_idx_save over old files, failing at every byte of the new images (the file size limit
 * makes write fail with EFBIG past k bytes), or at the labels: both old files stay as they
 * were and no temporary file is left. A path that is not a regular file is refused and left
 * alone; a symbolic link is followed and kept.
 */
static void test_idx_save_replaces(void **state)
{
    (void)state;
    static bytes im, lb, gim, glb, old_im, old_lb;
    good_images(&im);
    good_labels(&lb);
    nb_dataset *ds = nb_idx_load_memory(im.b, im.n, lb.b, lb.n), *old = indexed_dataset(10, 3);
    assert_non_null(ds);
    char ip[512], lp[512], want[1200];
    /* the gzip files the save makes, to compare with */
    assert_int_equal(nb_idx_save(ds, tmp_path("gz-images.gz"), tmp_path("gz-labels.gz")), NB_OK);
    read_file(tmp_path("gz-images.gz"), &gim);
    read_file(tmp_path("gz-labels.gz"), &glb);
    struct rlimit saved;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &saved), 0);
    void (*prev)(int) = signal(SIGXFSZ, SIG_IGN);
    for (int gz = 0; gz < 2; gz++) {
        snprintf(ip, sizeof ip, "%s", tmp_path(gz ? "keep-images.gz" : "keep-images"));
        snprintf(lp, sizeof lp, "%s", tmp_path(gz ? "keep-labels.gz" : "keep-labels"));
        assert_int_equal(nb_idx_save(old, ip, lp), NB_OK);
        read_file(ip, &old_im);
        read_file(lp, &old_lb);
        const bytes *new_im = gz ? &gim : &im, *new_lb = gz ? &glb : &lb;
        for (size_t k = 0; k < new_im->n; k++) {
            struct rlimit lim = {(rlim_t)k, saved.rlim_max};
            assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
            nb_error_clear();
            nb_status st = nb_idx_save(ds, ip, lp);
            assert_int_equal(setrlimit(RLIMIT_FSIZE, &saved), 0);
            assert_int_equal(st, NB_EIO);
            snprintf(want, sizeof want, "nb_idx_save: cannot write '%s': File too large", ip);
            assert_message(NB_EIO, want);
            assert_file_is(ip, &old_im);
            assert_file_is(lp, &old_lb);
            assert_int_equal(count_entries("keep-"), 2);
        }
        /* labels that cannot be written: the new images, written already, are dropped */
        const char *dir = tmp_path("keep-dir");
        assert_int_equal(mkdir(dir, 0700), 0);
        assert_int_equal(nb_idx_save(ds, ip, dir), NB_EIO);
        snprintf(want, sizeof want, "nb_idx_save: '%s' exists and is not a regular file", dir);
        assert_message(NB_EIO, want);
        assert_int_equal(nb_idx_save(ds, dir, lp), NB_EIO);
        assert_message(NB_EIO, want);
        struct stat sb;
        assert_int_equal(stat(dir, &sb), 0);
        assert_true(S_ISDIR(sb.st_mode));
        assert_int_equal(rmdir(dir), 0);
        assert_file_is(ip, &old_im);
        assert_file_is(lp, &old_lb);
        assert_int_equal(count_entries("keep-"), 2);
        /* with no limit the save replaces both; through a link, the link's target */
        const char *link = tmp_path(gz ? "keep-link.gz" : "keep-link"); /* gzip by this name */
        assert_int_equal(symlink(ip, link), 0);
        assert_int_equal(nb_idx_save(ds, link, lp), NB_OK);
        assert_int_equal(lstat(link, &sb), 0);
        assert_true(S_ISLNK(sb.st_mode));
        assert_int_equal(unlink(link), 0);
        assert_file_is(ip, new_im);
        assert_file_is(lp, new_lb);
        assert_int_equal(count_entries("keep-"), 2);
        /* a link to a file not there yet (relative): the file is made, the link stays */
        assert_int_equal(remove(ip), 0);
        assert_int_equal(symlink(gz ? "keep-images.gz" : "keep-images", link), 0);
        assert_int_equal(nb_idx_save(ds, link, lp), NB_OK);
        assert_int_equal(lstat(link, &sb), 0);
        assert_true(S_ISLNK(sb.st_mode));
        assert_int_equal(unlink(link), 0);
        assert_file_is(ip, new_im);
        assert_int_equal(remove(ip), 0);
        assert_int_equal(remove(lp), 0);
    }
    signal(SIGXFSZ, prev);
    nb_dataset_free(old);
    nb_dataset_free(ds);
}

/*
 * nb_idx_save with both paths naming one file, in any spelling (the same string, another path
 * to it, a symbolic or hard link, or a file not there yet): refused, before anything is
 * written, where the labels would otherwise replace the images just saved.
 */
static void test_idx_save_same_file(void **state)
{
    (void)state;
    static bytes old_im;
    nb_dataset *ds = indexed_dataset(4, 2), *old = indexed_dataset(3, 5);
    char ip[512], other[512], want[1200], cwd[4096];
    snprintf(ip, sizeof ip, "%s", tmp_path("same-images"));
    assert_int_equal(nb_idx_save(old, ip, tmp_path("same-labels")), NB_OK);
    read_file(ip, &old_im);
    const char *spellings[4] = {ip, other, tmp_path("same-link"), tmp_path("same-hard")};
    snprintf(other, sizeof other, "%s/./same-images", tmpdir);
    assert_int_equal(symlink(ip, spellings[2]), 0);
    assert_int_equal(link(ip, spellings[3]), 0);
    for (int k = 0; k < 4; k++) {
        for (int swap = 0; swap < 2; swap++) {
            const char *a = swap ? spellings[k] : ip, *b = swap ? ip : spellings[k];
            nb_error_clear();
            assert_int_equal(nb_idx_save(ds, a, b), NB_EINVAL);
            snprintf(want, sizeof want, "nb_idx_save: '%s' and '%s' are the same file", a, b);
            assert_message(NB_EINVAL, want);
            assert_file_is(ip, &old_im);
            assert_int_equal(count_entries("same-"), 4);
        }
    }
    /* a file not there yet, by its full name and by a name relative to the directory */
    const char *fresh = tmp_path("same-new");
    assert_non_null(getcwd(cwd, sizeof cwd));
    assert_int_equal(chdir(tmpdir), 0);
    assert_int_equal(nb_idx_save(ds, fresh, "same-new"), NB_EINVAL);
    assert_int_equal(nb_idx_save(ds, "same-new", "./same-new"), NB_EINVAL);
    assert_int_equal(chdir(cwd), 0);
    assert_int_equal(count_entries("same-"), 4);
    /* different files in one directory, and one name in two directories, are saved */
    assert_int_equal(nb_idx_save(ds, fresh, tmp_path("same-new-labels")), NB_OK);
    const char *sub = tmp_path("same-dir");
    assert_int_equal(mkdir(sub, 0700), 0);
    snprintf(other, sizeof other, "%s/same-dir/same-new", tmpdir);
    assert_int_equal(nb_idx_save(ds, fresh, other), NB_OK);
    assert_int_equal(remove(other), 0);
    assert_int_equal(rmdir(sub), 0);
    const char *made[] = {"same-images", "same-labels", "same-link",
                          "same-hard",   "same-new",    "same-new-labels"};
    for (size_t k = 0; k < sizeof made / sizeof *made; k++)
        assert_int_equal(remove(tmp_path(made[k])), 0);
    nb_dataset_free(old);
    nb_dataset_free(ds);
}

/* Each row of x is the example its index names, through table; y holds its label. */
static void assert_batch(const nb_dataset *ds, const nb_tensor *x, const nb_tensor *y,
                         const int64_t *idx, int64_t b, const uint32_t *table)
{
    const int64_t d = nb_dataset_example_size(ds);
    const float *xd = nb_tensor_data_const(x), *yd = nb_tensor_data_const(y);
    for (int64_t r = 0; r < b; r++) {
        const uint8_t *src = nb_dataset_images(ds) + idx[r] * d;
        for (int64_t j = 0; j < d; j++) {
            uint32_t bits;
            memcpy(&bits, &xd[r * d + j], sizeof bits);
            if (bits != table[src[j]])
                fail_msg("row %" PRId64 " (example %" PRId64 "), value %" PRId64
                         ": got 0x%08x, want 0x%08x for byte %d",
                         r, idx[r], j, bits, table[src[j]], src[j]);
        }
        assert_true(yd[r] == (float)nb_dataset_labels(ds)[idx[r]]);
    }
}

/* ---- batches -------------------------------------------------------------------------- */

/* Every byte value becomes ToTensor's (and Normalize's) float, bit for bit. */
static void test_batch_values(void **state)
{
    (void)state;
    nb_dataset *ds = indexed_dataset(4, 64); /* 256 bytes: every value once */
    for (int norm = 0; norm < 2; norm++) {
        nb_dataloader_options o = {
            .batch_size = 4, .normalize = norm, .mean = DATA_REF_MEAN, .std = DATA_REF_STD};
        nb_dataloader *dl = nb_dataloader_new(ds, &o);
        assert_non_null(dl);
        assert_int_equal(nb_dataloader_begin_epoch(dl), NB_OK);
        nb_tensor *x, *y;
        assert_int_equal(nb_dataloader_next(dl, &x, &y), 4);
        assert_int_equal(nb_tensor_ndim(x), 2);
        assert_int_equal(nb_tensor_shape(x)[0], 4);
        assert_int_equal(nb_tensor_shape(x)[1], 64);
        assert_int_equal(nb_tensor_ndim(y), 1);
        assert_int_equal(nb_tensor_shape(y)[0], 4);
        assert_false(nb_tensor_requires_grad(x));
        int64_t n;
        const int64_t *idx = nb_dataloader_batch_indices(dl, &n);
        assert_int_equal(n, 4);
        assert_batch(ds, x, y, idx, 4, norm ? data_ref_normalised : data_ref_scaled);
        nb_release(x);
        nb_release(y);
        nb_dataloader_free(dl);
    }
    nb_dataset_free(ds);
}

/* Sequential order, drop_last, the end of an epoch, and calls out of turn. */
static void test_epochs(void **state)
{
    (void)state;
    nb_dataset *ds = indexed_dataset(10, 3);
    for (int drop = 0; drop < 2; drop++) {
        nb_dataloader_options o = {.batch_size = 4, .drop_last = drop};
        nb_dataloader *dl = nb_dataloader_new(ds, &o);
        assert_non_null(dl);
        assert_int_equal(nb_dataloader_num_batches(dl), drop ? 2 : 3);
        nb_tensor *junk = nb_scalar(0), *x = junk, *y = junk;
        assert_int_equal(nb_dataloader_next(dl, &x, &y), NB_ESTATE);
        nb_release(junk);
        assert_message(NB_ESTATE, "nb_dataloader_next: no epoch is running: call "
                                  "nb_dataloader_begin_epoch first");
        assert_null(x);
        assert_null(y);
        for (int epoch = 0; epoch < 2; epoch++) {
            assert_int_equal(nb_dataloader_begin_epoch(dl), NB_OK);
            int64_t n = -1;
            assert_null(nb_dataloader_batch_indices(dl, &n));
            assert_int_equal(n, 0);
            int64_t want = 0;
            for (int b = 0; b < (drop ? 2 : 3); b++) {
                int64_t size = b < 2 ? 4 : 2;
                assert_int_equal(nb_dataloader_next(dl, &x, &y), size);
                const int64_t *idx = nb_dataloader_batch_indices(dl, &n);
                assert_int_equal(n, size);
                for (int64_t r = 0; r < size; r++) assert_int_equal(idx[r], want++);
                assert_batch(ds, x, y, idx, size, data_ref_scaled);
                nb_release(x);
                nb_release(y);
            }
            for (int k = 0; k < 2; k++) { /* the end, and it stays the end */
                assert_int_equal(nb_dataloader_next(dl, &x, &y), 0);
                assert_null(x);
                assert_null(y);
                assert_null(nb_dataloader_batch_indices(dl, NULL));
            }
        }
        /* leaving an epoch early and beginning another starts from the first batch */
        assert_int_equal(nb_dataloader_begin_epoch(dl), NB_OK);
        assert_int_equal(nb_dataloader_next(dl, &x, &y), 4);
        nb_release(x);
        nb_release(y);
        assert_int_equal(nb_dataloader_begin_epoch(dl), NB_OK);
        assert_int_equal(nb_dataloader_next(dl, &x, &y), 4);
        assert_int_equal(nb_dataloader_batch_indices(dl, NULL)[0], 0);
        nb_release(x);
        nb_release(y);
        nb_dataloader_free(dl);
    }

    /* a batch larger than the dataset holds all of it, unless dropped */
    nb_dataloader_options big = {.batch_size = 64};
    nb_dataloader *dl = nb_dataloader_new(ds, &big);
    assert_int_equal(nb_dataloader_num_batches(dl), 1);
    nb_dataloader_begin_epoch(dl);
    nb_tensor *x, *y;
    assert_int_equal(nb_dataloader_next(dl, &x, &y), 10);
    nb_release(x);
    nb_release(y);
    nb_dataloader_free(dl);
    big.drop_last = true;
    dl = nb_dataloader_new(ds, &big);
    assert_int_equal(nb_dataloader_num_batches(dl), 0);
    nb_dataloader_begin_epoch(dl);
    assert_int_equal(nb_dataloader_next(dl, &x, &y), 0);
    nb_dataloader_free(dl);

    /* options NULL: batch_size 1, in order */
    dl = nb_dataloader_new(ds, NULL);
    assert_int_equal(nb_dataloader_num_batches(dl), 10);
    nb_dataloader_begin_epoch(dl);
    assert_int_equal(nb_dataloader_next(dl, &x, &y), 1);
    nb_release(x);
    nb_release(y);
    nb_dataloader_free(dl);
    nb_dataset_free(ds);
}

/* Every loader case of data_ref.h, through next (simple) or next_into (reused tensors). */
static void run_loader_case(const data_ref_loader *c, bool into)
{
    nb_dataset *ds = indexed_dataset(c->n, 2);
    nb_manual_seed(c->seed);
    nb_generator *g = c->gen_seed >= 0 ? nb_generator_new((uint64_t)c->gen_seed) : NULL;
    nb_dataloader_options o = {.batch_size = c->batch_size,
                               .shuffle = c->shuffle,
                               .drop_last = c->drop_last,
                               .generator = g};
    nb_dataloader *dl = nb_dataloader_new(ds, &o);
    assert_non_null(dl);
    nb_tensor *xr = nb_empty(NB_SHAPE(c->batch_size, 2)), *yr = nb_empty(NB_SHAPE(c->batch_size));
    int64_t s = 0, i = 0;
    uint64_t hash = 0, k = 1;
    for (int epoch = 0; epoch < c->epochs; epoch++) {
        assert_int_equal(nb_dataloader_begin_epoch(dl), NB_OK);
        if (c->between) nb_release(nb_rand(NB_SHAPE(2)));
        for (;;) {
            nb_tensor *x = xr, *y = yr;
            int64_t b = into ? nb_dataloader_next_into(dl, xr, yr) : nb_dataloader_next(dl, &x, &y);
            assert_true(s < c->nsizes);
            if (b != c->sizes[s])
                fail_msg("%s: batch %" PRId64 " has %" PRId64 " examples, want %" PRId64, c->name,
                         s, b, c->sizes[s]);
            s++;
            if (b == 0) break;
            int64_t n;
            const int64_t *idx = nb_dataloader_batch_indices(dl, &n);
            assert_int_equal(n, b);
            for (int64_t r = 0; r < b; r++, i++) {
                if (c->indices && idx[r] != c->indices[i])
                    fail_msg("%s: index %" PRId64 " is %" PRId64 ", want %d", c->name, i, idx[r],
                             c->indices[i]);
                if (!c->indices && i < c->sizes[0]) assert_int_equal(idx[r], c->first[i]);
                k *= DATA_REF_HASH_K;
                hash += ((uint64_t)idx[r] + 1u) * k;
            }
            assert_batch(ds, x, y, idx, b, data_ref_scaled);
            if (!into) {
                nb_release(x);
                nb_release(y);
            }
        }
    }
    assert_int_equal(s, c->nsizes);
    assert_int_equal(i, c->nindices);
    if (!c->indices) assert_int_equal(hash, c->hash);

    /* the generators are left where PyTorch leaves them */
    nb_tensor *after = nb_rand(NB_SHAPE(3));
    assert_memory_equal(nb_tensor_data_const(after), c->after, sizeof c->after);
    nb_release(after);
    if (g) {
        after = nb_rand_gen(NB_SHAPE(3), g);
        assert_memory_equal(nb_tensor_data_const(after), c->after_gen, sizeof c->after_gen);
        nb_release(after);
    }
    nb_release(xr);
    nb_release(yr);
    nb_dataloader_free(dl);
    nb_generator_free(g);
    nb_dataset_free(ds);
}

static void test_order_reference(void **state)
{
    (void)state;
    for (size_t c = 0; c < sizeof data_ref_loaders / sizeof data_ref_loaders[0]; c++) {
        print_message("%s\n", data_ref_loaders[c].name);
        run_loader_case(&data_ref_loaders[c], false);
        run_loader_case(&data_ref_loaders[c], true);
    }
}

/* next_into: a warm epoch allocates nothing; its argument checks. */
static void test_next_into(void **state)
{
    (void)state;
    nb_dataset *ds = indexed_dataset(100, 12);
    nb_dataloader_options o = {.batch_size = 8, .shuffle = true};
    nb_dataloader *dl = nb_dataloader_new(ds, &o);
    nb_tensor *x = nb_empty(NB_SHAPE(8, 3, 4)), *y = nb_empty(NB_SHAPE(8));
    assert_non_null(dl);
    assert_int_equal(nb_dataloader_begin_epoch(dl), NB_OK);
    nbt_fail_alloc_after(0); /* count from here */
    int64_t b, total = 0;
    uint64_t v = nb_tensor_version(x);
    while ((b = nb_dataloader_next_into(dl, x, y)) > 0) total += b;
    assert_int_equal(b, 0);
    assert_int_equal(total, 100);
    assert_int_equal(nbt_alloc_count(), 0);
    assert_int_equal(nb_tensor_version(x), v + 13);
    /* the short last batch (4) left rows 4..7 as the batch before wrote them */
    nb_dataloader_begin_epoch(dl);

    nb_tensor *wrong = nb_empty(NB_SHAPE(4, 12)), *wrong_y = nb_empty(NB_SHAPE(8, 1));
    assert_int_equal(nb_dataloader_next_into(dl, wrong, y), NB_EINVAL);
    assert_message(NB_EINVAL,
                   "nb_dataloader_next_into: images must hold a batch of [8, 12], got [4, 12]");
    assert_int_equal(nb_dataloader_next_into(dl, x, wrong_y), NB_EINVAL);
    assert_message(NB_EINVAL, "nb_dataloader_next_into: labels must be [8], got [8, 1]");
    nb_error_clear();
    assert_int_equal(nb_dataloader_next_into(dl, NULL, y), NB_EINVAL);
    assert_message(NB_EINVAL, "nb_dataloader_next_into: argument 'images' is NULL");
    assert_int_equal(nb_dataloader_next_into(dl, x, NULL), NB_EINVAL);
    assert_message(NB_EINVAL, "nb_dataloader_next_into: argument 'labels' is NULL");
    assert_int_equal(nb_dataloader_next_into(NULL, x, y), NB_EINVAL);
    assert_message(NB_EINVAL, "nb_dataloader_next_into: argument 'dl' is NULL");
    /* labels that are part of images, or one tensor for both: each would overwrite the other */
    nb_tensor *flat = nb_reshape(x, NB_SHAPE(96)), *inside = nb_slice(flat, 0, 40, 48, 1);
    nb_tensor *one = nb_empty(NB_SHAPE(8)), *one_x = nb_reshape(one, NB_SHAPE(8, 1));
    assert_int_equal(nb_dataloader_next_into(dl, x, inside), NB_EINVAL);
    assert_message(NB_EINVAL,
                   "nb_dataloader_next_into: images and labels share memory: give them tensors "
                   "of their own");
    nb_dataset *d1 = indexed_dataset(8, 1);
    nb_dataloader *dl1 = nb_dataloader_new(d1, &(nb_dataloader_options){.batch_size = 8});
    assert_non_null(dl1);
    assert_int_equal(nb_dataloader_begin_epoch(dl1), NB_OK);
    assert_int_equal(nb_dataloader_next_into(dl1, one, one), NB_EINVAL);
    assert_int_equal(nb_dataloader_next_into(dl1, one_x, one), NB_EINVAL);
    assert_error(NB_EINVAL, "share memory");
    assert_int_equal(nb_dataloader_next_into(dl1, one_x, y), 8); /* nothing was taken */
    assert_int_equal(nb_dataloader_batch_indices(dl1, NULL)[0], 0);
    nb_dataloader_free(dl1);
    nb_dataset_free(d1);
    nb_release(flat);
    nb_release(inside);
    nb_release(one_x);
    nb_release(one);
    nb_requires_grad_(x, true);
    assert_int_equal(nb_dataloader_next_into(dl, x, y), NB_ESTATE);
    assert_error(NB_ESTATE, "nb_dataloader_next_into: a leaf Variable that requires grad");
    nb_requires_grad_(x, false);
    /* nothing was taken by the failed calls: the epoch's first batch comes now */
    assert_int_equal(nb_dataloader_next_into(dl, x, y), 8);
    int64_t n;
    const int64_t *first = nb_dataloader_batch_indices(dl, &n);
    assert_int_equal(n, 8);
    assert_batch(ds, x, y, first, 8, data_ref_scaled);
    for (total = 8; (b = nb_dataloader_next_into(dl, x, y)) > 0;) total += b;
    assert_int_equal(total, 100);

    nb_release(wrong);
    nb_release(wrong_y);
    nb_release(x);
    nb_release(y);
    nb_dataloader_free(dl);
    nb_dataset_free(ds);
}

static void test_loader_errors(void **state)
{
    (void)state;
    nb_dataset *ds = indexed_dataset(5, 1), *empty;
    static bytes im, lb;
    static const uint32_t zero[2] = {0, 4};
    const uint8_t h2[4] = {0, 0, 8, 2};
    idx_file(&im, h2, 2, zero, 0);
    idx_file(&lb, good_head1, 1, zero, 0);
    empty = nb_idx_load_memory(im.b, im.n, lb.b, lb.n);
    assert_non_null(empty);

    nb_dataloader_options o = {.batch_size = 0};
    assert_null(nb_dataloader_new(ds, &o));
    assert_message(NB_EINVAL, "nb_dataloader_new: batch_size must be at least 1, got 0");
    o.batch_size = 2;
    o.shuffle = true;
    assert_null(nb_dataloader_new(empty, &o));
    assert_message(NB_EINVAL, "nb_dataloader_new: cannot shuffle an empty dataset (PyTorch: "
                              "num_samples should be a positive integer value)");
    o.shuffle = false;
    o.normalize = true;
    o.std = 0.0f;
    assert_null(nb_dataloader_new(ds, &o));
    assert_message(NB_EINVAL, "nb_dataloader_new: normalize needs a finite mean and a finite, "
                              "non-zero std, got mean 0, std 0");
    o.normalize = false;

    /* sequential over an empty dataset: epochs without batches */
    nb_dataloader *dl = nb_dataloader_new(empty, &o);
    assert_non_null(dl);
    assert_int_equal(nb_dataloader_num_batches(dl), 0);
    nb_dataloader_begin_epoch(dl);
    nb_tensor *x, *y;
    assert_int_equal(nb_dataloader_next(dl, &x, &y), 0);
    nb_dataloader_free(dl);

    /* a generator that failed to be made is not taken for "no generator" */
    nbt_fail_alloc_after(1);
    o.generator = nb_generator_new(3);
    nbt_fail_alloc_after(0);
    assert_null(nb_dataloader_new(ds, &o));
    assert_message(NB_ENOMEM, "nb_generator_new: out of memory");
    /* nor is a dataset that failed to load */
    assert_null(nb_dataloader_new(nb_idx_load_memory(NULL, 0, NULL, 0), &o));
    assert_message(NB_EINVAL, "nb_idx_load_memory: images: truncated: 0 bytes, not even an IDX "
                              "header");
    /* an empty buffer may be NULL: read as no bytes (not NULL + 0, which is undefined) */
    assert_null(nb_idx_load_memory(im.b, im.n, NULL, 0));
    assert_message(NB_EINVAL, "nb_idx_load_memory: labels: truncated: 0 bytes, not even an IDX "
                              "header");
    assert_null(nb_dataloader_new(NULL, &o));
    assert_message(NB_EINVAL, "nb_dataloader_new: argument 'ds' is NULL");

    assert_int_equal(nb_dataloader_begin_epoch(NULL), NB_EINVAL);
    assert_message(NB_EINVAL, "nb_dataloader_begin_epoch: argument 'dl' is NULL");
    assert_int_equal(nb_dataloader_next(NULL, &x, &y), NB_EINVAL);
    assert_message(NB_EINVAL, "nb_dataloader_next: argument 'dl' is NULL");
    dl = nb_dataloader_new(ds, NULL);
    nb_tensor *stale = nb_scalar(0); /* the other output is set to NULL all the same */
    y = stale;
    assert_int_equal(nb_dataloader_next(dl, NULL, &y), NB_EINVAL);
    assert_message(NB_EINVAL, "nb_dataloader_next: argument 'images' is NULL");
    assert_null(y);
    x = stale;
    assert_int_equal(nb_dataloader_next(dl, &x, NULL), NB_EINVAL);
    assert_message(NB_EINVAL, "nb_dataloader_next: argument 'labels' is NULL");
    assert_null(x);
    nb_release(stale);
    assert_int_equal(nb_dataloader_num_batches(NULL), -1);
    assert_null(nb_dataloader_batch_indices(NULL, NULL));
    nb_dataloader_free(dl);
    nb_dataloader_free(NULL);

    /* accessors of NULL */
    assert_int_equal(nb_dataset_count(NULL), -1);
    assert_int_equal(nb_dataset_example_size(NULL), -1);
    assert_int_equal(nb_dataset_num_classes(NULL), -1);
    assert_int_equal(nb_dataset_image_shape(NULL).ndim, 0);
    assert_null(nb_dataset_images(NULL));
    assert_null(nb_dataset_labels(NULL));
    nb_dataset_free(empty);
    nb_dataset_free(ds);
}

/* A failed allocation in next leaves the loader as it was: the same batch comes next. */
static void test_next_oom(void **state)
{
    (void)state;
    nb_dataset *ds = indexed_dataset(50, 4);
    nb_dataloader_options o = {.batch_size = 16, .shuffle = true};
    int64_t want[4][16];
    nb_manual_seed(2);
    nb_dataloader *dl = nb_dataloader_new(ds, &o);
    nb_dataloader_begin_epoch(dl);
    nb_tensor *x, *y;
    for (int b = 0; b < 4; b++) {
        int64_t n = nb_dataloader_next(dl, &x, &y);
        memcpy(want[b], nb_dataloader_batch_indices(dl, NULL), (size_t)n * sizeof(int64_t));
        nb_release(x);
        nb_release(y);
    }
    nb_dataloader_free(dl);

    nb_manual_seed(2);
    dl = nb_dataloader_new(ds, &o);
    nb_dataloader_begin_epoch(dl);
    for (int b = 0; b < 4; b++) {
        for (long k = 1;; k++) {
            nb_error_clear();
            nbt_fail_alloc_after(k);
            int64_t n = nb_dataloader_next(dl, &x, &y);
            int failed = nbt_alloc_failed();
            nbt_fail_alloc_after(0);
            if (!failed) {
                assert_int_equal(n, b < 3 ? 16 : 2);
                assert_memory_equal(nb_dataloader_batch_indices(dl, NULL), want[b],
                                    (size_t)n * sizeof(int64_t));
                nb_release(x);
                nb_release(y);
                break;
            }
            assert_int_equal(n, NB_ENOMEM);
            assert_null(x);
            assert_null(y);
            assert_message(NB_ENOMEM, "nb_dataloader_next: out of memory");
        }
    }
    nb_dataloader_free(dl);
    nb_dataset_free(ds);
}

/* The indices of every batch of one epoch, concatenated into got; returns their count. */
static int64_t epoch_indices(nb_dataloader *dl, int64_t *got, int64_t cap, int64_t *sizes)
{
    assert_int_equal(nb_dataloader_begin_epoch(dl), NB_OK);
    int64_t total = 0, b, nb = 0;
    nb_tensor *x, *y;
    while ((b = nb_dataloader_next(dl, &x, &y)) > 0) {
        assert_true(total + b <= cap);
        memcpy(got + total, nb_dataloader_batch_indices(dl, NULL), (size_t)b * sizeof *got);
        total += b;
        sizes[nb++] = b;
        nb_release(x);
        nb_release(y);
    }
    assert_int_equal(b, 0);
    sizes[nb] = 0;
    return total;
}

/* An explicit order (a sampler's list): its batches, drop_last, a running epoch that keeps
 * its order, a list longer than the dataset, the base seed still drawn, errors, and
 * allocation failure that leaves the loader as it was. */
static void test_set_order(void **state)
{
    (void)state;
    nb_dataset *ds = indexed_dataset(10, 3);
    const int64_t order[5] = {7, 2, 2, 9, 0};
    int64_t got[32], sizes[32];
    for (int drop = 0; drop < 2; drop++) {
        nb_dataloader_options o = {.batch_size = 2, .drop_last = drop};
        nb_dataloader *dl = nb_dataloader_new(ds, &o);
        assert_int_equal(nb_dataloader_set_order(dl, order, 5), NB_OK);
        assert_int_equal(nb_dataloader_num_batches(dl), drop ? 2 : 3);
        int64_t n = epoch_indices(dl, got, 32, sizes);
        assert_int_equal(n, drop ? 4 : 5);
        assert_memory_equal(got, order, (size_t)n * sizeof *got);
        assert_int_equal(sizes[0], 2);
        assert_int_equal(sizes[drop ? 2 : 3], 0);
        nb_dataloader_free(dl);
    }

    nb_dataloader_options o = {.batch_size = 4};
    nb_dataloader *dl = nb_dataloader_new(ds, &o);
    nb_tensor *x, *y;
    /* a running epoch keeps its order; the next one takes the list, copied */
    assert_int_equal(nb_dataloader_begin_epoch(dl), NB_OK);
    assert_int_equal(nb_dataloader_next(dl, &x, &y), 4);
    nb_release(x);
    nb_release(y);
    int64_t longer[25];
    for (int i = 0; i < 25; i++) longer[i] = (i * 7) % 10;
    assert_int_equal(nb_dataloader_set_order(dl, longer, 25), NB_OK);
    assert_int_equal(nb_dataloader_next(dl, &x, &y), 4);
    for (int64_t r = 0; r < 4; r++)
        assert_int_equal(nb_dataloader_batch_indices(dl, NULL)[r], 4 + r);
    assert_batch(ds, x, y, nb_dataloader_batch_indices(dl, NULL), 4, data_ref_scaled);
    nb_release(x);
    nb_release(y);
    longer[0] = 3; /* the loader holds its own copy */
    assert_int_equal(nb_dataloader_num_batches(dl), 7);
    assert_int_equal(epoch_indices(dl, got, 32, sizes), 25);
    assert_int_equal(got[0], 0);
    for (int i = 1; i < 25; i++) assert_int_equal(got[i], (i * 7) % 10);
    assert_int_equal(sizes[6], 1);
    /* an empty list: epochs with no batch */
    assert_int_equal(nb_dataloader_set_order(dl, NULL, 0), NB_OK);
    assert_int_equal(nb_dataloader_num_batches(dl), 0);
    assert_int_equal(epoch_indices(dl, got, 32, sizes), 0);

    /* iter(loader) draws its base seed with a sampler too: random64(), two 32-bit draws */
    nb_manual_seed(3);
    assert_int_equal(nb_dataloader_begin_epoch(dl), NB_OK);
    assert_int_equal(nb_dataloader_begin_epoch(dl), NB_OK);
    nb_tensor *after = nb_rand(NB_SHAPE(2));
    nb_manual_seed(3);
    for (int k = 0; k < 4; k++) (void)nb_generator_random(NULL);
    nb_tensor *want = nb_rand(NB_SHAPE(2));
    assert_memory_equal(nb_tensor_data_const(after), nb_tensor_data_const(want), 2 * sizeof(float));
    nb_release(after);
    nb_release(want);

    /* errors leave the order as it was */
    assert_int_equal(nb_dataloader_set_order(dl, order, 5), NB_OK);
    nb_error_clear();
    assert_int_equal(nb_dataloader_set_order(NULL, order, 5), NB_EINVAL);
    assert_message(NB_EINVAL, "nb_dataloader_set_order: argument 'dl' is NULL");
    assert_int_equal(nb_dataloader_set_order(dl, order, -1), NB_EINVAL);
    assert_message(NB_EINVAL, "nb_dataloader_set_order: n must be non-negative, got -1");
    assert_int_equal(nb_dataloader_set_order(dl, NULL, 2), NB_EINVAL);
    assert_message(NB_EINVAL, "nb_dataloader_set_order: argument 'indices' is NULL");
    const int64_t bad[3] = {1, 10, 2};
    assert_int_equal(nb_dataloader_set_order(dl, bad, 3), NB_ERANGE);
    assert_message(NB_ERANGE, "nb_dataloader_set_order: indices[1] = 10 is outside [0, 10)");
    const int64_t neg[1] = {-1};
    assert_int_equal(nb_dataloader_set_order(dl, neg, 1), NB_ERANGE);
    assert_message(NB_ERANGE, "nb_dataloader_set_order: indices[0] = -1 is outside [0, 10)");
    nb_dataloader_free(dl);
    /* a fresh loader, whose order buffer must grow too */
    dl = nb_dataloader_new(ds, &o);
    assert_int_equal(nb_dataloader_set_order(dl, order, 5), NB_OK);
    for (long k = 1;; k++) {
        nbt_fail_alloc_after(k);
        nb_status st = nb_dataloader_set_order(dl, longer, 25);
        int failed = nbt_alloc_failed();
        nbt_fail_alloc_after(0);
        if (!failed) {
            assert_int_equal(st, NB_OK);
            break;
        }
        assert_int_equal(st, NB_ENOMEM);
        assert_message(NB_ENOMEM, "nb_dataloader_set_order: out of memory");
        assert_int_equal(nb_dataloader_num_batches(dl), 2);
        assert_int_equal(epoch_indices(dl, got, 32, sizes), 5);
        assert_memory_equal(got, order, sizeof order);
    }
    assert_int_equal(nb_dataloader_num_batches(dl), 7);
    nb_dataloader_free(dl);

    /* a sampler's list and shuffle exclude each other */
    nb_dataloader_options sh = {.batch_size = 4, .shuffle = true};
    dl = nb_dataloader_new(ds, &sh);
    assert_int_equal(nb_dataloader_set_order(dl, order, 5), NB_EINVAL);
    assert_message(NB_EINVAL, "nb_dataloader_set_order: an explicit order and shuffle exclude "
                              "each other (PyTorch: sampler option is mutually exclusive with "
                              "shuffle)");
    nb_dataloader_free(dl);
    nb_dataset_free(ds);
}

/* ---- subsets -------------------------------------------------------------------------- */

static void test_subsets(void **state)
{
    (void)state;
    nb_dataset *ds = nb_mnist_load(MINI_DIR, true);
    assert_non_null(ds);
    const int64_t d = nb_dataset_example_size(ds);
    const uint8_t *im = nb_dataset_images(ds), *lb = nb_dataset_labels(ds);

    const int64_t idx[4] = {999, 0, 999, 17};
    nb_dataset *sub = nb_dataset_subset(ds, idx, 4);
    assert_non_null(sub);
    assert_int_equal(nb_dataset_count(sub), 4);
    assert_int_equal(nb_dataset_num_classes(sub), 10);
    assert_int_equal(nb_dataset_image_shape(sub).ndim, 2);
    for (int i = 0; i < 4; i++) {
        assert_memory_equal(nb_dataset_images(sub) + i * d, im + idx[i] * d, (size_t)d);
        assert_int_equal(nb_dataset_labels(sub)[i], lb[idx[i]]);
    }
    /* independent of its parent: a subset of a subset, after the parent is gone */
    nb_dataset *none = nb_dataset_subset(ds, NULL, 0);
    assert_non_null(none);
    assert_int_equal(nb_dataset_count(none), 0);
    nb_dataset_free(none);

    /* classes 0-4, relabelled 0-4; and two classes in another order */
    const int first_five[5] = {0, 1, 2, 3, 4}, two[2] = {7, 2};
    nb_dataset *five = nb_dataset_select_classes(ds, first_five, 5);
    nb_dataset *pair = nb_dataset_select_classes(ds, two, 2);
    assert_non_null(five);
    assert_non_null(pair);
    assert_int_equal(nb_dataset_num_classes(five), 5);
    assert_int_equal(nb_dataset_num_classes(pair), 2);
    int64_t j5 = 0, j2 = 0;
    for (int64_t i = 0; i < nb_dataset_count(ds); i++) {
        if (lb[i] < 5) {
            assert_int_equal(nb_dataset_labels(five)[j5], lb[i]);
            assert_memory_equal(nb_dataset_images(five) + j5 * d, im + i * d, (size_t)d);
            j5++;
        }
        if (lb[i] == 7 || lb[i] == 2) {
            assert_int_equal(nb_dataset_labels(pair)[j2], lb[i] == 7 ? 0 : 1);
            assert_memory_equal(nb_dataset_images(pair) + j2 * d, im + i * d, (size_t)d);
            j2++;
        }
    }
    assert_int_equal(nb_dataset_count(five), j5);
    assert_int_equal(nb_dataset_count(pair), j2);
    assert_true(j5 > 400 && j2 > 150);

    nb_error_clear();
    const int64_t bad_idx[2] = {0, 1000};
    assert_null(nb_dataset_subset(ds, bad_idx, 2));
    assert_message(NB_ERANGE, "nb_dataset_subset: indices[1] = 1000 is outside [0, 1000)");
    assert_null(nb_dataset_subset(ds, idx, -1));
    assert_message(NB_EINVAL, "nb_dataset_subset: n must be >= 0, got -1");
    assert_null(nb_dataset_subset(ds, NULL, 2));
    assert_message(NB_EINVAL, "nb_dataset_subset: argument 'indices' is NULL");
    assert_null(nb_dataset_subset(NULL, idx, 2));
    assert_message(NB_EINVAL, "nb_dataset_subset: argument 'ds' is NULL");
    const int dup[3] = {1, 5, 1}, out[1] = {10};
    assert_null(nb_dataset_select_classes(ds, dup, 3));
    assert_message(NB_EINVAL, "nb_dataset_select_classes: class 1 is given twice");
    assert_null(nb_dataset_select_classes(ds, out, 1));
    assert_message(NB_EINVAL, "nb_dataset_select_classes: classes[0] = 10 is outside [0, 10)");
    assert_null(nb_dataset_select_classes(ds, dup, 0));
    assert_message(NB_EINVAL, "nb_dataset_select_classes: n must be in [1, 256], got 0");
    assert_null(nb_dataset_select_classes(ds, NULL, 1));
    assert_message(NB_EINVAL, "nb_dataset_select_classes: argument 'classes' is NULL");
    assert_null(nb_dataset_select_classes(NULL, dup, 1));
    assert_message(NB_EINVAL, "nb_dataset_select_classes: argument 'ds' is NULL");

    nb_dataset_free(ds);
    nb_dataset *subsub = nb_dataset_subset(sub, idx + 1, 1);
    assert_non_null(subsub);
    assert_memory_equal(nb_dataset_images(subsub), nb_dataset_images(sub), (size_t)d);
    nb_dataset_free(subsub);
    nb_dataset_free(sub);
    nb_dataset_free(five);
    nb_dataset_free(pair);
}

/* ---- Fashion-MNIST: the committed subset, and the real files when installed ----------- */

static void check_set(const data_ref_set *r, const nb_dataset *ds)
{
    assert_non_null(ds);
    assert_int_equal(nb_dataset_count(ds), r->count);
    nb_shape s = nb_dataset_image_shape(ds);
    assert_int_equal(s.ndim, 2);
    assert_int_equal(s.dims[0], 28);
    assert_int_equal(s.dims[1], 28);
    assert_int_equal(nb_dataset_example_size(ds), 784);
    assert_int_equal(nb_dataset_num_classes(ds), 10);
    const uint8_t *im = nb_dataset_images(ds), *lb = nb_dataset_labels(ds);
    uint64_t labels = 0, pixels = 0;
    for (int64_t i = 0; i < r->count; i++) labels += lb[i];
    for (int64_t i = 0; i < r->count * 784; i++) pixels += im[i];
    assert_int_equal(labels, r->label_sum);
    assert_int_equal(pixels, r->pixel_sum);
    for (int i = 0; i < 10; i++) assert_int_equal(lb[i], r->first_labels[i]);
    assert_int_equal(lb[r->count - 1], r->last_label);
    for (int i = 0; i < 4; i++) {
        const data_ref_pixel *p = &r->pixels[i];
        assert_int_equal(im[p->example * 784 + p->row * 28 + p->col], p->value);
    }
}

static void test_fashion_mini(void **state)
{
    (void)state;
    for (size_t k = 0; k < sizeof data_ref_sets / sizeof data_ref_sets[0]; k++) {
        const data_ref_set *r = &data_ref_sets[k];
        if (r->dir[0] == '/') continue;
        nb_dataset *ds = nb_mnist_load(MINI_DIR, r->train);
        check_set(r, ds);
        nb_dataset_free(ds);
    }
}

/* The installed dataset (Debian's dataset-fashion-mnist), when it is there. */
static void test_fashion_real(void **state)
{
    (void)state;
    struct stat sb;
    if (stat(FASHION_DIR, &sb) != 0) {
        print_message("%s is not installed: skipped\n", FASHION_DIR);
        skip();
    }
    for (size_t k = 0; k < sizeof data_ref_sets / sizeof data_ref_sets[0]; k++) {
        const data_ref_set *r = &data_ref_sets[k];
        if (r->dir[0] != '/') continue;
        nb_dataset *ds = nb_mnist_load(r->dir, r->train);
        if (!ds) fail_msg("%s", nb_last_error()->message);
        check_set(r, ds);
        nb_dataset_free(ds);
    }
}

/* Loading the subset and an epoch of it, failing each allocation in turn. */
static void test_alloc_sweep(void **state)
{
    (void)state;
    const long live = nbt_alloc_live();
    long k = 1;
    for (;; k++) {
        nb_error_clear();
        nbt_fail_alloc_after(k);
        nb_dataset *ds = nb_mnist_load(MINI_DIR, true);
        nb_dataloader *dl = NULL;
        int64_t batches = 0, b = 0;
        const char *fn = "nb_mnist_load";
        if (ds) {
            fn = "nb_dataloader_new";
            nb_dataloader_options o = {.batch_size = 128,
                                       .shuffle = true,
                                       .normalize = true,
                                       .mean = DATA_REF_MEAN,
                                       .std = DATA_REF_STD};
            dl = nb_dataloader_new(ds, &o);
        }
        if (dl) {
            fn = "nb_dataloader_next";
            nb_dataloader_begin_epoch(dl);
            nb_tensor *x, *y;
            while ((b = nb_dataloader_next(dl, &x, &y)) > 0) {
                batches++;
                nb_release(x);
                nb_release(y);
            }
        }
        int failed = nbt_alloc_failed();
        nbt_fail_alloc_after(0);
        nb_dataloader_free(dl);
        nb_dataset_free(ds);
        assert_int_equal(nbt_alloc_live(), live);
        if (!failed) {
            assert_int_equal(b, 0);
            assert_int_equal(batches, 8);
            break;
        }
        char want[128];
        snprintf(want, sizeof want, "%s: out of memory", fn);
        assert_message(NB_ENOMEM, want);
    }
    print_message("%ld allocations, each failed once\n", k - 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_idx_round_trip, nbt_setup_counting,
                                        nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_idx_save_replaces, nbt_setup_counting,
                                        nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_idx_save_same_file, nbt_setup_counting,
                                        nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_bad_files, nbt_setup_counting, nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_bad_gzip, nbt_setup_counting, nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_load_errors, nbt_setup_counting,
                                        nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_batch_values, nbt_setup_counting,
                                        nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_epochs, nbt_setup_counting, nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_order_reference, nbt_setup_counting,
                                        nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_next_into, nbt_setup_counting, nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_loader_errors, nbt_setup_counting,
                                        nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_next_oom, nbt_setup_counting, nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_set_order, nbt_setup_counting, nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_subsets, nbt_setup_counting, nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_fashion_mini, nbt_setup_counting,
                                        nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_fashion_real, nbt_setup_counting,
                                        nbt_teardown_counting),
        cmocka_unit_test_setup_teardown(test_alloc_sweep, nbt_setup_counting,
                                        nbt_teardown_counting),
    };
    return cmocka_run_group_tests_name("data", tests, group_setup, group_teardown);
}
