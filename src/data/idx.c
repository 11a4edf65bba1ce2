/*
 * IDX files, plain or gzip-compressed, read from a file or a buffer and written to a file.
 *
 * Reading goes through one byte stream (a file or a buffer, optionally through inflate), so
 * every check is made once for every kind of input. The data buffer is sized by what the
 * input can hold (see gzip_hint) and grows only with what actually arrives (up to the size
 * the header announces), so a short file that claims huge dimensions costs no huge
 * allocation, and nothing is read past the end of a buffer or a file. zlib allocates through
 * nabla's allocator, so allocation-failure tests reach its allocations too.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <zlib.h>

#include "core/internal.h"
#include "data/internal.h"

#define IDX_UBYTE 0x08
#define CHUNK     ((size_t)64 << 10)
/* the first buffer for data of unknown size (gzip): then doubled as bytes arrive */
#define FIRST_READ ((size_t)1 << 20)
/* deflate expands at most about 1032:1, which bounds how far a gzip size hint is trusted */
#define DEFLATE_MAX_RATIO 1032

/* ---- zlib through nabla's allocator ---------------------------------------------------- */

static voidpf z_alloc(voidpf opaque, uInt items, uInt size)
{
    (void)opaque;
    if (size != 0 && items > SIZE_MAX / size) return Z_NULL;
    return nb__alloc((size_t)items * size, 16);
}

static void z_free(voidpf opaque, voidpf ptr)
{
    (void)opaque;
    nb__free(ptr);
}

/* ---- the input stream ----------------------------------------------------------------- */

typedef struct source {
    const char *fn;   /* the public function, for errors */
    const char *name; /* the path, or "images" / "labels" for a buffer */
    FILE *file;       /* NULL for a buffer */
    const uint8_t *mem;
    size_t mem_left;
    size_t known_left; /* bytes left in a plain input when known (a buffer, a regular file) */
    bool known;
    size_t gz_hint;  /* the decompressed size a gzip trailer announces (bounded), or 0 */
    uint8_t peek[2]; /* bytes of a file read ahead to recognise gzip */
    size_t npeek;
    bool gzip;
    bool z_ready;
    bool z_done;   /* the last gzip member has ended and no input follows */
    bool in_ended; /* the compressed input has no bytes left to give inflate */
    z_stream z;
    uint8_t *in; /* inflate's input from a file */
} source;

static nb_status src_error(const source *s, nb_status code, const char *fmt, ...) NB__PRINTF(3, 4);

/* Record "fn: 'path': cause" (files) or "fn: images: cause" (buffers). */
static nb_status src_error(const source *s, nb_status code, const char *fmt, ...)
{
    char cause[320];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cause, sizeof cause, fmt, ap);
    va_end(ap);
    if (s->file) return nb__error(code, s->fn, "'%s': %s", s->name, cause);
    return nb__error(code, s->fn, "%s: %s", s->name, cause);
}

/* Up to n bytes of the raw input (before inflate) into buf; fewer only at its end. */
static nb_status raw_read(source *s, uint8_t *buf, size_t n, size_t *got)
{
    size_t k = 0;
    *got = 0;
    while (s->npeek > 0 && k < n) {
        buf[k++] = s->peek[0];
        s->peek[0] = s->peek[1];
        s->npeek--;
    }
    if (!s->file) {
        size_t m = n - k < s->mem_left ? n - k : s->mem_left;
        if (m) { /* an empty buffer may be NULL, and NULL + 0 is undefined */
            memcpy(buf + k, s->mem, m);
            s->mem += m;
            s->mem_left -= m;
            k += m;
        }
    } else if (k < n) {
        errno = 0;
        k += fread(buf + k, 1, n - k, s->file);
        if (k < n && ferror(s->file))
            return src_error(s, NB_EIO, "read error: %s", strerror(errno ? errno : EIO));
    }
    *got = k;
    return NB_OK;
}

/* Give inflate more input when it has none; *more says whether it has some now. */
static nb_status z_refill(source *s, bool *more)
{
    if (s->z.avail_in == 0 && !s->in_ended) {
        size_t got = 0;
        if (s->file) {
            nb_status st = raw_read(s, s->in, CHUNK, &got);
            if (st != NB_OK) return st;
            s->z.next_in = s->in;
        } else {
            got = s->mem_left < UINT_MAX ? s->mem_left : UINT_MAX;
            s->z.next_in = (Bytef *)(uintptr_t)s->mem; /* zlib's API is not const */
            s->mem += got;
            s->mem_left -= got;
        }
        s->z.avail_in = (uInt)got;
        s->in_ended = got == 0;
    }
    *more = s->z.avail_in > 0;
    return NB_OK;
}

/* Up to n decompressed bytes into buf; fewer only at the end of the last gzip member. */
static nb_status z_read(source *s, uint8_t *buf, size_t n, size_t *got)
{
    size_t done = 0;
    while (done < n && !s->z_done) {
        bool more;
        nb_status st = z_refill(s, &more);
        if (st != NB_OK) return st;
        size_t want = n - done < UINT_MAX ? n - done : UINT_MAX;
        s->z.next_out = buf + done;
        s->z.avail_out = (uInt)want;
        int rc = inflate(&s->z, Z_NO_FLUSH);
        done += want - s->z.avail_out;
        if (rc == Z_STREAM_END) {
            /*
             * A gzip file may hold several members, as gunzip reads them, and zero bytes
             * after one, which Python's gzip skips (some tools pad to a block size).
             */
            for (;;) {
                st = z_refill(s, &more);
                if (st != NB_OK) return st;
                while (s->z.avail_in > 0 && *s->z.next_in == 0) {
                    s->z.next_in++;
                    s->z.avail_in--;
                }
                if (s->z.avail_in > 0 || !more) break;
            }
            if (!more)
                s->z_done = true;
            else if (inflateReset(&s->z) != Z_OK)
                return src_error(s, NB_EINVAL, "corrupt gzip stream");
        } else if (rc == Z_BUF_ERROR) {
            /* no progress: inflate needs input that is not there */
            if (s->in_ended) return src_error(s, NB_EINVAL, "truncated gzip stream");
        } else if (rc == Z_MEM_ERROR) {
            return nb__oom(s->fn);
        } else if (rc != Z_OK) {
            return src_error(s, NB_EINVAL, "corrupt gzip stream (%s)",
                             s->z.msg ? s->z.msg : "invalid data");
        }
    }
    *got = done;
    return NB_OK;
}

/* Up to n bytes of the (decompressed) input; fewer only at its end. */
static nb_status src_read(source *s, uint8_t *buf, size_t n, size_t *got)
{
    if (s->gzip) return z_read(s, buf, n, got);
    nb_status st = raw_read(s, buf, n, got);
    if (st == NB_OK && s->known) s->known_left -= *got < s->known_left ? *got : s->known_left;
    return st;
}

/*
 * The size a gzip input's last four bytes (ISIZE) announce, to allocate the data once
 * instead of growing it: only a hint (modulo 2^32, of the last member only), bounded by
 * what the compressed size can expand to. A file is read there and back only when it is a
 * regular file, so pipes still stream.
 */
static void gzip_hint(source *s)
{
    if (!s->known || s->known_left < 18) return; /* smaller than any gzip member */
    uint8_t t[4];
    if (s->file) {
        long here = ftell(s->file);
        bool ok = here >= 0 && fseek(s->file, -4, SEEK_END) == 0 && fread(t, 1, 4, s->file) == 4;
        if (here < 0 || fseek(s->file, here, SEEK_SET) != 0 || !ok) {
            clearerr(s->file);
            return;
        }
    } else {
        memcpy(t, s->mem + s->mem_left - 4, 4);
    }
    size_t isize = (size_t)t[0] | (size_t)t[1] << 8 | (size_t)t[2] << 16 | (size_t)t[3] << 24;
    size_t bound =
        s->known_left < SIZE_MAX / DEFLATE_MAX_RATIO ? s->known_left * DEFLATE_MAX_RATIO : SIZE_MAX;
    s->gz_hint = isize < bound ? isize : bound;
}

/* Recognise gzip by its two magic bytes and set up inflate. */
static nb_status src_start(source *s, const uint8_t head[2], size_t nhead)
{
    s->gzip = nhead == 2 && head[0] == 0x1f && head[1] == 0x8b;
    if (!s->gzip) return NB_OK;
    gzip_hint(s);
    s->known = false;
    if (s->file) {
        s->in = nb__alloc(CHUNK, 16);
        if (!s->in) return nb__oom(s->fn);
    }
    s->z.zalloc = z_alloc;
    s->z.zfree = z_free;
    s->z.opaque = Z_NULL;
    int rc = inflateInit2(&s->z, 16 + MAX_WBITS); /* gzip wrapper only */
    if (rc == Z_MEM_ERROR) return nb__oom(s->fn);
    if (rc != Z_OK) return src_error(s, NB_EINVAL, "cannot start inflate");
    s->z_ready = true;
    return NB_OK;
}

static nb_status src_open_memory(source *s, const char *fn, const char *name, const void *data,
                                 size_t size)
{
    memset(s, 0, sizeof *s);
    s->fn = fn;
    s->name = name;
    s->mem = data;
    s->mem_left = size;
    s->known = true;
    s->known_left = size;
    return src_start(s, s->mem, size < 2 ? size : 2);
}

/* Open path; *err_no gets errno when it cannot be opened (nothing is recorded then). */
static FILE *open_read(const char *path, int *err_no)
{
    errno = 0;
    FILE *f = fopen(path, "rb");
    if (!f) *err_no = errno ? errno : ENOENT;
    return f;
}

/* Take over an open file: read ahead two bytes to recognise gzip. */
static nb_status src_open_file(source *s, const char *fn, const char *path, FILE *f)
{
    memset(s, 0, sizeof *s);
    s->fn = fn;
    s->name = path;
    s->file = f;
    struct stat sb;
    if (fstat(fileno(f), &sb) == 0 && S_ISREG(sb.st_mode) && sb.st_size >= 0) {
        s->known = true;
        s->known_left = (size_t)sb.st_size;
    }
    size_t got = 0;
    nb_status st = raw_read(s, s->peek, 2, &got);
    if (st != NB_OK) return st;
    s->npeek = got;
    return src_start(s, s->peek, got);
}

static void src_close(source *s)
{
    if (s->z_ready) inflateEnd(&s->z);
    nb__free(s->in);
    if (s->file) fclose(s->file);
    s->z_ready = false;
    s->in = NULL;
    s->file = NULL;
}

/* ---- IDX parsing ---------------------------------------------------------------------- */

typedef struct idx_data {
    int ndim;
    int64_t dims[NB_MAX_DIMS];
    int64_t example; /* bytes of one example: the product of dims[1..] */
    size_t size;     /* bytes of data: the product of dims */
    uint8_t *data;
} idx_data;

static const char *idx_type_name(int code)
{
    switch (code) {
    case 0x08:
        return " (unsigned byte)";
    case 0x09:
        return " (signed byte)";
    case 0x0b:
        return " (int16)";
    case 0x0c:
        return " (int32)";
    case 0x0d:
        return " (float32)";
    case 0x0e:
        return " (float64)";
    }
    return "";
}

/* The header: magic, data type, dimensions; their product into d->size. */
static nb_status read_header(source *s, bool labels, idx_data *d)
{
    uint8_t h[4 + 4 * NB_MAX_DIMS];
    size_t got = 0;
    nb_status st = src_read(s, h, 4, &got);
    if (st != NB_OK) return st;
    if (got < 4)
        return src_error(s, NB_EINVAL, "truncated: %zu bytes, not even an IDX header", got);
    if (h[0] != 0 || h[1] != 0)
        return src_error(s, NB_EINVAL,
                         "not an IDX file (magic number 0x%02x%02x%02x%02x; an IDX file starts "
                         "with two zero bytes)",
                         h[0], h[1], h[2], h[3]);
    if (h[2] != IDX_UBYTE)
        return src_error(s, NB_EINVAL,
                         "data type 0x%02x%s is not supported: MNIST files hold 0x08 (unsigned "
                         "byte)",
                         h[2], idx_type_name(h[2]));
    const int ndim = h[3];
    if (labels && ndim != 1)
        return src_error(s, NB_EINVAL, "a label file has 1 dimension, this one has %d", ndim);
    if (!labels && (ndim < 2 || ndim > NB_MAX_DIMS))
        return src_error(s, NB_EINVAL, "an image file has 2 to %d dimensions, this one has %d",
                         NB_MAX_DIMS, ndim);
    const size_t dims_bytes = 4 * (size_t)ndim;
    st = src_read(s, h + 4, dims_bytes, &got);
    if (st != NB_OK) return st;
    if (got < dims_bytes)
        return src_error(s, NB_EINVAL,
                         "truncated: the header of %d dimensions needs %zu bytes, "
                         "found %zu",
                         ndim, 4 + dims_bytes, 4 + got);
    d->ndim = ndim;
    for (int i = 0; i < ndim; i++) {
        const uint8_t *b = h + 4 + 4 * i;
        d->dims[i] = (int64_t)((uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 |
                               (uint32_t)b[3]);
    }
    /* every size is below 2^32: a product overflows only past the bound checked here */
    const uint64_t limit = (uint64_t)(INT64_MAX < SIZE_MAX ? INT64_MAX : SIZE_MAX);
    uint64_t example = 1;
    char shape[NB__SHAPE_STR];
    for (int i = 1; i < ndim; i++) {
        if (d->dims[i] == 0)
            return src_error(s, NB_EINVAL, "dimensions %s: an example cannot be empty",
                             nb__shape_str(shape, ndim, d->dims));
        if (example > limit / (uint64_t)d->dims[i])
            return src_error(s, NB_ERANGE, "dimensions %s overflow",
                             nb__shape_str(shape, ndim, d->dims));
        example *= (uint64_t)d->dims[i];
    }
    if (d->dims[0] != 0 && example > limit / (uint64_t)d->dims[0])
        return src_error(s, NB_ERANGE, "dimensions %s overflow",
                         nb__shape_str(shape, ndim, d->dims));
    d->example = (int64_t)example;
    d->size = (size_t)(example * (uint64_t)d->dims[0]);
    return NB_OK;
}

/* Exactly d->size bytes of data into a new buffer, and then nothing more. */
static nb_status read_data(source *s, idx_data *d)
{
    char shape[NB__SHAPE_STR];
    const size_t need = d->size;
    const size_t header = 4 + 4 * (size_t)d->ndim;
    size_t cap = s->known ? s->known_left : FIRST_READ;
    if (s->gz_hint > header) cap = s->gz_hint - header;
    if (cap > need) cap = need;
    if (cap == 0) cap = need < CHUNK ? need : CHUNK;
    uint8_t *buf = nb__alloc(cap ? cap : 1, NB__ALIGN);
    if (!buf) return nb__oom(s->fn);
    size_t have = 0;
    nb_status st;
    for (;;) {
        size_t got = 0;
        st = src_read(s, buf + have, cap - have, &got);
        if (st != NB_OK) goto fail;
        have += got;
        if (have < cap || cap == need) break;
        size_t grown = cap > need / 2 ? need : 2 * cap;
        uint8_t *bigger = nb__alloc(grown, NB__ALIGN);
        if (!bigger) {
            st = nb__oom(s->fn);
            goto fail;
        }
        memcpy(bigger, buf, have);
        nb__free(buf);
        buf = bigger;
        cap = grown;
    }
    if (have < need) {
        st = src_error(s, NB_EINVAL, "truncated: dimensions %s need %zu bytes of data, found %zu",
                       nb__shape_str(shape, d->ndim, d->dims), need, have);
        goto fail;
    }
    uint8_t extra;
    size_t got = 0;
    st = src_read(s, &extra, 1, &got);
    if (st != NB_OK) goto fail;
    if (got) {
        st = src_error(s, NB_EINVAL, "dimensions %s need %zu bytes of data, found more",
                       nb__shape_str(shape, d->ndim, d->dims), need);
        goto fail;
    }
    d->data = buf;
    return NB_OK;
fail:
    nb__free(buf);
    return st;
}

static nb_status read_idx(source *s, bool labels, idx_data *d)
{
    nb_status st = read_header(s, labels, d);
    return st == NB_OK ? read_data(s, d) : st;
}

/*
 * Read both files and make the dataset; closes both sources. Labels are read after the
 * images so that a bad image file is reported first.
 */
static nb_dataset *load(source *img, source *lbl)
{
    idx_data im = {0}, lb = {0};
    nb_dataset *ds = NULL;
    if (read_idx(img, false, &im) != NB_OK || read_idx(lbl, true, &lb) != NB_OK) goto done;
    if (lb.dims[0] != im.dims[0]) {
        src_error(lbl, NB_ESHAPE, "%lld labels for the %lld images of %s%s%s",
                  (long long)lb.dims[0], (long long)im.dims[0], img->file ? "'" : "", img->name,
                  img->file ? "'" : "");
        goto done;
    }
    int64_t num_classes = 0;
    for (size_t i = 0; i < lb.size; i++)
        if (lb.data[i] >= num_classes) num_classes = lb.data[i] + 1;
    ds = nb__dataset_new(img->fn, im.dims[0], im.ndim - 1, im.dims + 1, im.example, num_classes,
                         im.data, lb.data);
    im.data = lb.data = NULL; /* the dataset owns them (or freed them on failure) */
done:
    nb__free(im.data);
    nb__free(lb.data);
    src_close(img);
    src_close(lbl);
    return ds;
}

nb_dataset *nb_idx_load_memory(const void *images, size_t images_size, const void *labels,
                               size_t labels_size)
{
    static const char fn[] = "nb_idx_load_memory";
    if (!images && images_size > 0) {
        nb__error(NB_EINVAL, fn, "argument 'images' is NULL");
        return NULL;
    }
    if (!labels && labels_size > 0) {
        nb__error(NB_EINVAL, fn, "argument 'labels' is NULL");
        return NULL;
    }
    source img, lbl;
    memset(&lbl, 0, sizeof lbl);
    if (src_open_memory(&img, fn, "images", images, images_size) != NB_OK ||
        src_open_memory(&lbl, fn, "labels", labels, labels_size) != NB_OK) {
        src_close(&img);
        src_close(&lbl);
        return NULL;
    }
    return load(&img, &lbl);
}

/* Open path into s, or alt when there is no path, or record "cannot open" (naming alt too,
   when it was tried) for fn. */
static nb_status open_source(source *s, const char *fn, const char *path, const char *alt)
{
    memset(s, 0, sizeof *s);
    int err_no = 0;
    FILE *f = open_read(path, &err_no);
    const bool tried_alt = !f && alt && err_no == ENOENT;
    if (tried_alt) {
        f = open_read(alt, &err_no);
        if (f) path = alt;
    }
    if (!f) {
        if (tried_alt)
            return nb__error(NB_EIO, fn, "cannot open '%s' or '%s': %s", path, alt,
                             strerror(err_no));
        return nb__error(NB_EIO, fn, "cannot open '%s': %s", path, strerror(err_no));
    }
    return src_open_file(s, fn, path, f);
}

nb_dataset *nb_idx_load(const char *images_path, const char *labels_path)
{
    static const char fn[] = "nb_idx_load";
    if (!images_path || !labels_path) {
        nb__error(NB_EINVAL, fn, "argument '%s' is NULL",
                  images_path ? "labels_path" : "images_path");
        return NULL;
    }
    source img, lbl;
    memset(&lbl, 0, sizeof lbl);
    if (open_source(&img, fn, images_path, NULL) != NB_OK ||
        open_source(&lbl, fn, labels_path, NULL) != NB_OK) {
        src_close(&img);
        src_close(&lbl);
        return NULL;
    }
    return load(&img, &lbl);
}

nb_dataset *nb_mnist_load(const char *dir, bool train)
{
    static const char fn[] = "nb_mnist_load";
    if (!dir) {
        nb__error(NB_EINVAL, fn, "argument 'dir' is NULL");
        return NULL;
    }
    const char *names[2] = {train ? "train-images-idx3-ubyte" : "t10k-images-idx3-ubyte",
                            train ? "train-labels-idx1-ubyte" : "t10k-labels-idx1-ubyte"};
    /* dir/name and dir/name.gz for each file, in one block */
    const size_t len = strlen(dir) + 1 + strlen(names[0]) + 4;
    char *paths = nb__alloc(4 * len, 1);
    if (!paths) {
        nb__oom(fn);
        return NULL;
    }
    for (size_t i = 0; i < 2; i++) {
        snprintf(paths + (2 * i) * len, len, "%s/%s", dir, names[i]);
        snprintf(paths + (2 * i + 1) * len, len, "%s/%s.gz", dir, names[i]);
    }
    source img, lbl;
    memset(&lbl, 0, sizeof lbl);
    nb_dataset *ds = NULL;
    if (open_source(&img, fn, paths, paths + len) != NB_OK ||
        open_source(&lbl, fn, paths + 2 * len, paths + 3 * len) != NB_OK) {
        src_close(&img);
        src_close(&lbl);
    } else {
        ds = load(&img, &lbl); /* the messages name the paths, which live until here */
    }
    nb__free(paths);
    return ds;
}

/* ---- writing -------------------------------------------------------------------------- */

typedef struct sink {
    const char *fn;
    const char *path;
    nb__file_out file;
    bool gzip;
    bool z_ready;
    z_stream z;
    uint8_t *out; /* deflate's output before it is written */
} sink;

static nb_status sink_write_raw(sink *k, const void *p, size_t n)
{
    int rc = nb__file_out_write(&k->file, p, n);
    if (rc) {
        char why[128];
        return nb__error(NB_EIO, k->fn, "cannot write '%s': %s", k->path,
                         nb__errno_str(rc, why, sizeof why));
    }
    return NB_OK;
}

/* Run deflate over what it holds with flush, writing its output. */
static nb_status sink_deflate(sink *k, int flush)
{
    for (;;) {
        k->z.next_out = k->out;
        k->z.avail_out = (uInt)CHUNK;
        int rc = deflate(&k->z, flush);
        if (rc == Z_STREAM_ERROR) return nb__error(NB_EIO, k->fn, "deflate failed");
        nb_status st = sink_write_raw(k, k->out, CHUNK - k->z.avail_out);
        if (st != NB_OK) return st;
        if (flush == Z_FINISH ? rc == Z_STREAM_END : k->z.avail_out != 0) return NB_OK;
    }
}

static nb_status sink_write(sink *k, const void *p, size_t n)
{
    if (!k->gzip) return sink_write_raw(k, p, n);
    const uint8_t *b = p;
    while (n > 0) {
        size_t step = n < UINT_MAX ? n : UINT_MAX;
        k->z.next_in = (Bytef *)(uintptr_t)b;
        k->z.avail_in = (uInt)step;
        nb_status st = sink_deflate(k, Z_NO_FLUSH);
        if (st != NB_OK) return st;
        b += step;
        n -= step;
    }
    return NB_OK;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

static nb_status sink_open(sink *k, const char *fn, const char *path)
{
    memset(k, 0, sizeof *k);
    k->file.fd = -1; /* nothing to abort yet */
    k->fn = fn;
    k->path = path;
    k->gzip = ends_with(path, ".gz");
    if (k->gzip) {
        k->out = nb__alloc(CHUNK, 16);
        if (!k->out) return nb__oom(fn);
        k->z.zalloc = z_alloc;
        k->z.zfree = z_free;
        int rc = deflateInit2(&k->z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 16 + MAX_WBITS, 8,
                              Z_DEFAULT_STRATEGY);
        if (rc != Z_OK) return nb__oom(fn);
        k->z_ready = true;
    }
    return nb__file_out_open(&k->file, fn, path);
}

/* End the stream; a file that was not written completely is dropped. */
static nb_status sink_finish(sink *k, nb_status st)
{
    if (st == NB_OK && k->gzip) st = sink_deflate(k, Z_FINISH);
    if (k->z_ready) deflateEnd(&k->z);
    nb__free(k->out);
    if (st != NB_OK) nb__file_out_abort(&k->file);
    return st;
}

/*
 * One IDX file of unsigned bytes, [dims[0], ..., dims[ndim-1]] then data, written to k's
 * temporary file: nb__file_out_commit puts it in place.
 */
static nb_status write_idx(sink *k, const char *fn, const char *path, int ndim, const int64_t *dims,
                           const uint8_t *data, size_t size)
{
    const uint8_t nd = (uint8_t)ndim; /* at most NB_MAX_DIMS + 1; the format's count is a byte */
    uint8_t h[4 + 4 * UINT8_MAX] = {0, 0, IDX_UBYTE, nd};
    for (int i = 0; i < nd; i++) {
        uint32_t v = (uint32_t)dims[i];
        uint8_t *b = h + 4 + 4 * i;
        b[0] = (uint8_t)(v >> 24);
        b[1] = (uint8_t)(v >> 16);
        b[2] = (uint8_t)(v >> 8);
        b[3] = (uint8_t)v;
    }
    nb_status st = sink_open(k, fn, path);
    if (st == NB_OK) st = sink_write(k, h, 4 + 4 * (size_t)nd);
    if (st == NB_OK) st = sink_write(k, data, size);
    return sink_finish(k, st);
}

nb_status nb_idx_save(const nb_dataset *ds, const char *images_path, const char *labels_path)
{
    static const char fn[] = "nb_idx_save";
    if (!ds) return nb__null(fn, "ds");
    if (!images_path || !labels_path)
        return nb__error(NB_EINVAL, fn, "argument '%s' is NULL",
                         images_path ? "labels_path" : "images_path");
    if (nb__same_file(images_path, labels_path))
        return nb__error(NB_EINVAL, fn, "'%s' and '%s' are the same file", images_path,
                         labels_path);
    int64_t dims[NB_MAX_DIMS + 1];
    dims[0] = ds->count;
    memcpy(dims + 1, ds->dims, (size_t)ds->ndim * sizeof *dims);
    for (int i = 0; i <= ds->ndim; i++) {
        if (dims[i] > (int64_t)UINT32_MAX) {
            char shape[NB__SHAPE_STR];
            return nb__error(NB_ERANGE, fn, "dimensions %s do not fit IDX's uint32 sizes",
                             nb__shape_str(shape, ds->ndim + 1, dims));
        }
    }
    /* both files are written and synced before either replaces an old one, and the images go
     * back to the old ones when the labels cannot be put in place */
    sink im, lb;
    nb_status st = write_idx(&im, fn, images_path, ds->ndim + 1, dims, ds->images,
                             (size_t)ds->count * (size_t)ds->example_size);
    if (st != NB_OK) return st;
    st = write_idx(&lb, fn, labels_path, 1, dims, ds->labels, (size_t)ds->count);
    if (st == NB_OK) st = nb__file_out_commit_all((nb__file_out *[]){&im.file, &lb.file}, 2, fn);
    nb__file_out_abort(&im.file);
    nb__file_out_abort(&lb.file);
    return st;
}
