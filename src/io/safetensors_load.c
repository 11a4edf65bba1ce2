/*
 * Reading safetensors checkpoints. Every number in the header is checked before it is used:
 * the header length against the input, each dtype and shape against its byte range, each
 * range against the data section, and the ranges against each other (they must tile the
 * data section exactly). Only then are tensors allocated and filled, each straight from the
 * input into its storage: a file is read with pread, never mapped, so a file truncated while
 * it is read is an error and not a SIGBUS, and its bytes are in memory once.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "io/internal.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error                                                                                             \
    "the safetensors reader copies little-endian data as is: port it before using a big-endian host"
#endif

typedef unsigned long long ull; /* for printing uint64_t with %llu */

/* ---- dtypes ---------------------------------------------------------------------------- */

typedef void (*convert_fn)(float *dst, const unsigned char *src, size_t n);

static void from_f16(float *dst, const unsigned char *src, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint32_t h = (uint32_t)src[2 * i] | (uint32_t)src[2 * i + 1] << 8;
        uint32_t sign = (h & 0x8000u) << 16, exp = (h >> 10) & 0x1fu, mant = h & 0x3ffu;
        uint32_t bits;
        if (exp == 0x1f) { /* inf; a NaN keeps its payload and is quiet, as torch's (F16C's) */
            bits = sign | 0x7f800000u | mant << 13 | (mant ? 0x00400000u : 0u);
        } else if (exp != 0) { /* rebias 15 → 127 */
            bits = sign | (exp + 112) << 23 | mant << 13;
        } else if (mant == 0) {
            bits = sign;
        } else { /* subnormal mant·2^-24: normalise into a float normal */
            uint32_t e = 113;
            while (!(mant & 0x400u)) {
                mant <<= 1;
                e--;
            }
            bits = sign | e << 23 | (mant & 0x3ffu) << 13;
        }
        memcpy(&dst[i], &bits, 4);
    }
}

static void from_bf16(float *dst, const unsigned char *src, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint32_t bits = ((uint32_t)src[2 * i] | (uint32_t)src[2 * i + 1] << 8) << 16;
        memcpy(&dst[i], &bits, 4);
    }
}

static void from_f64(float *dst, const unsigned char *src, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        double v;
        memcpy(&v, src + 8 * i, 8);
        dst[i] = (float)v; /* round to nearest, as torch's .float() */
    }
}

typedef struct dtype_info {
    const char *name;
    unsigned size;
    convert_fn convert; /* NULL: F32 (copied as is) or not loadable */
    bool loadable;
} dtype_info;

/* Every dtype of the safetensors format, so that a real one is named, not called unknown. */
static const dtype_info dtypes[] = {
    {"F32", 4, NULL, true},     {"F16", 2, from_f16, true},  {"BF16", 2, from_bf16, true},
    {"F64", 8, from_f64, true}, {"BOOL", 1, NULL, false},    {"U8", 1, NULL, false},
    {"I8", 1, NULL, false},     {"F8_E5M2", 1, NULL, false}, {"F8_E4M3", 1, NULL, false},
    {"I16", 2, NULL, false},    {"U16", 2, NULL, false},     {"I32", 4, NULL, false},
    {"U32", 4, NULL, false},    {"I64", 8, NULL, false},     {"U64", 8, NULL, false},
};

static const dtype_info *find_dtype(const char *name)
{
    for (size_t i = 0; i < sizeof dtypes / sizeof dtypes[0]; i++)
        if (!strcmp(dtypes[i].name, name)) return &dtypes[i];
    return NULL;
}

/* ---- the input: a buffer or a file ---------------------------------------------------- */

typedef struct source {
    const char *fn;
    const unsigned char *mem; /* the whole input when in_memory */
    bool in_memory;
    int fd;
    const char *path;
    uint64_t size;
} source;

/* n bytes at off, which the caller has checked lie inside the input. */
static nb_status source_read(const source *s, uint64_t off, void *dst, size_t n)
{
    if (s->in_memory) {
        if (n) memcpy(dst, s->mem + off, n);
        return NB_OK;
    }
    unsigned char *p = dst;
    while (n > 0) {
        size_t want = n < ((size_t)1 << 30) ? n : (size_t)1 << 30;
        ssize_t got = pread(s->fd, p, want, (off_t)off);
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) {
            char why[128];
            return nb__error(NB_EIO, s->fn, "cannot read '%s': %s", s->path,
                             nb__errno_str(errno, why, sizeof why));
        }
        if (got == 0)
            return nb__error(NB_EIO, s->fn,
                             "'%s' ended at byte %llu of %llu (truncated while read?)", s->path,
                             (ull)off, (ull)s->size);
        p += got;
        off += (uint64_t)got;
        n -= (size_t)got;
    }
    return NB_OK;
}

/* ---- the header ------------------------------------------------------------------------ */

typedef struct entry {
    const char *name; /* the header's key: lives as long as the parsed header */
    size_t index;     /* position in the header */
    const dtype_info *dtype;
    int ndim;
    int64_t dims[NB_MAX_DIMS];
    uint64_t begin, end; /* in the data section */
} entry;

static bool get_size(const json_t *v, uint64_t *out)
{
    if (!json_is_integer(v) || json_integer_value(v) < 0) return false;
    *out = (uint64_t)json_integer_value(v);
    return true;
}

static nb_status parse_shape(const char *fn, entry *e, const json_t *shape)
{
    if (!json_is_array(shape))
        return nb__error(NB_EINVAL, fn, "tensor \"%s\": \"shape\" is missing or not an array",
                         e->name);
    size_t ndim = json_array_size(shape);
    if (ndim > NB_MAX_DIMS)
        return nb__error(NB_EINVAL, fn, "tensor \"%s\": shape has %zu dimensions, more than %d",
                         e->name, ndim, NB_MAX_DIMS);
    e->ndim = (int)ndim;
    for (size_t i = 0; i < ndim; i++) {
        uint64_t dim;
        if (!get_size(json_array_get(shape, i), &dim))
            return nb__error(NB_EINVAL, fn,
                             "tensor \"%s\": shape dimension %zu is not a non-negative integer",
                             e->name, i);
        e->dims[i] = (int64_t)dim;
    }
    return NB_OK;
}

static nb_status parse_entry(const char *fn, entry *e, const json_t *info, uint64_t data_len)
{
    const char *name = e->name;
    if (!name[0]) return nb__error(NB_EINVAL, fn, "a tensor has an empty name");
    if (!json_is_object(info))
        return nb__error(NB_EINVAL, fn, "tensor \"%s\": the entry is not a JSON object", name);

    const json_t *dt = json_object_get(info, "dtype");
    if (!json_is_string(dt))
        return nb__error(NB_EINVAL, fn, "tensor \"%s\": \"dtype\" is missing or not a string",
                         name);
    e->dtype = find_dtype(json_string_value(dt));
    if (!e->dtype)
        return nb__error(NB_EINVAL, fn, "tensor \"%s\": unknown dtype \"%s\"", name,
                         json_string_value(dt));
    if (!e->dtype->loadable)
        return nb__error(NB_EINVAL, fn,
                         "tensor \"%s\": dtype %s is not supported (nabla loads F32, F16, BF16 "
                         "and F64)",
                         name, e->dtype->name);

    nb_status st = parse_shape(fn, e, json_object_get(info, "shape"));
    if (st != NB_OK) return st;

    const json_t *off = json_object_get(info, "data_offsets");
    if (!json_is_array(off) || json_array_size(off) != 2 ||
        !get_size(json_array_get(off, 0), &e->begin) || !get_size(json_array_get(off, 1), &e->end))
        return nb__error(NB_EINVAL, fn,
                         "tensor \"%s\": \"data_offsets\" is not [begin, end] with two "
                         "non-negative integers",
                         name);
    if (e->begin > e->end)
        return nb__error(NB_EINVAL, fn,
                         "tensor \"%s\": data_offsets [%llu, %llu] end before they begin", name,
                         (ull)e->begin, (ull)e->end);
    if (e->end > data_len)
        return nb__error(NB_EINVAL, fn,
                         "tensor \"%s\": data_offsets [%llu, %llu] run past the end of the data "
                         "section (%llu bytes)",
                         name, (ull)e->begin, (ull)e->end, (ull)data_len);

    /* The elements multiplied in order from 1, then the dtype's size, as the safetensors
     * library and torch's storage size count them: [2^62, 0] is an empty tensor, while
     * [2^40, 2^40, 0] overflows on the way. A product is kept within int64_t, nabla's own
     * limit on a shape, so that every shape accepted here is one nb_empty makes. */
    char shape[NB__SHAPE_STR];
    uint64_t numel = 1;
    bool overflow = false;
    for (int i = 0; i < e->ndim && !overflow; i++) {
        uint64_t dim = (uint64_t)e->dims[i];
        overflow = dim && numel > (uint64_t)INT64_MAX / dim;
        numel *= dim;
    }
    if (overflow || numel > UINT64_MAX / e->dtype->size)
        return nb__error(NB_EINVAL, fn, "tensor \"%s\": shape %s has too many elements", name,
                         nb__shape_str(shape, e->ndim, e->dims));
    uint64_t bytes = numel * e->dtype->size;
    if (bytes != e->end - e->begin)
        return nb__error(NB_EINVAL, fn,
                         "tensor \"%s\": shape %s of %s is %llu bytes, but data_offsets [%llu, "
                         "%llu] hold %llu",
                         name, nb__shape_str(shape, e->ndim, e->dims), e->dtype->name, (ull)bytes,
                         (ull)e->begin, (ull)e->end, (ull)(e->end - e->begin));
    return NB_OK;
}

static nb_status check_metadata(const char *fn, json_t *meta)
{
    if (json_is_null(meta)) return NB_OK; /* no metadata, as the format's own reader takes it */
    if (!json_is_object(meta))
        return nb__error(NB_EINVAL, fn, "\"__metadata__\" is not a JSON object");
    const char *key;
    json_t *value;
    json_object_foreach(meta, key, value)
    {
        if (!json_is_string(value))
            return nb__error(NB_EINVAL, fn, "metadata \"%s\" is not a string", key);
    }
    return NB_OK;
}

static int by_range(const void *a, const void *b)
{
    const entry *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return x->index < y->index ? -1 : x->index > y->index;
}

static int by_index(const void *a, const void *b)
{
    const entry *x = a, *y = b;
    return x->index < y->index ? -1 : x->index > y->index;
}

/* Taken in order of begin, the ranges must cover [0, data_len) once each. Sorts e by range. */
static nb_status check_tiling(const char *fn, entry *e, size_t n, uint64_t data_len)
{
    if (n) qsort(e, n, sizeof *e, by_range);
    uint64_t at = 0;
    const entry *prev = NULL;
    for (size_t i = 0; i < n; i++) {
        if (e[i].begin < at)
            return nb__error(NB_EINVAL, fn,
                             "tensors \"%s\" and \"%s\" overlap (data_offsets [%llu, %llu] and "
                             "[%llu, %llu])",
                             prev->name, e[i].name, (ull)prev->begin, (ull)prev->end,
                             (ull)e[i].begin, (ull)e[i].end);
        if (e[i].begin > at)
            return nb__error(NB_EINVAL, fn,
                             "bytes %llu to %llu of the data section belong to no tensor (a gap "
                             "before \"%s\")",
                             (ull)at, (ull)e[i].begin, e[i].name);
        at = e[i].end;
        prev = &e[i];
    }
    if (at != data_len)
        return nb__error(NB_EINVAL, fn,
                         "the last %llu bytes of the data section belong to no tensor",
                         (ull)(data_len - at));
    return NB_OK;
}

/* Every entry of the header into e (n of them: the object's size less the metadata). */
static nb_status parse_header(const char *fn, json_t *root, entry *e, uint64_t data_len)
{
    const char *key;
    json_t *value;
    size_t i = 0;
    json_object_foreach(root, key, value)
    {
        nb_status st;
        if (!strcmp(key, "__metadata__")) {
            st = check_metadata(fn, value);
        } else {
            e[i] = (entry){.name = key, .index = i};
            st = parse_entry(fn, &e[i], value, data_len);
            i++;
        }
        if (st != NB_OK) return st;
    }
    return NB_OK;
}

/* ---- the tensors ----------------------------------------------------------------------- */

#define CHUNK (64 * 1024) /* bytes converted at a time */

/* Fill t from the entry's bytes, starting at data_start in the input. */
static nb_status read_tensor(const source *s, const entry *e, uint64_t data_start, nb_tensor *t,
                             unsigned char **chunk)
{
    float *dst = nb_tensor_data(t);
    uint64_t off = data_start + e->begin;
    size_t numel = (size_t)nb_tensor_numel(t);
    if (numel == 0) return NB_OK;
    if (!e->dtype->convert) return source_read(s, off, dst, numel * sizeof(float));
    if (!*chunk && !(*chunk = nb__alloc(CHUNK, 16))) return nb__oom(s->fn);
    size_t per = CHUNK / e->dtype->size;
    for (size_t done = 0; done < numel; done += per) {
        size_t k = numel - done < per ? numel - done : per;
        nb_status st = source_read(s, off + done * e->dtype->size, *chunk, k * e->dtype->size);
        if (st != NB_OK) return st;
        e->dtype->convert(dst + done, *chunk, k);
    }
    return NB_OK;
}

/* The metadata and the tensors, in header order, into a new dict. */
static nb_status build(const source *s, json_t *root, const entry *e, size_t n, uint64_t data_start,
                       nb_state_dict **out)
{
    const char *fn = s->fn;
    unsigned char *chunk = NULL;
    json_t *meta = json_object_get(root, "__metadata__"), *value;
    const char *key;
    nb_state_dict *d = nb_state_dict_new();
    if (!d) goto oom;
    json_object_foreach(meta, key, value)
    {
        if (nb__state_dict_append_metadata(d, key, json_string_value(value)) != NB_OK) goto oom;
    }
    for (size_t i = 0; i < n; i++) {
        /* the shape was checked: only memory can run out */
        nb_tensor *t = nb_empty(nb_shape_make(e[i].ndim, e[i].dims));
        if (!t) goto oom;
        nb_status st = read_tensor(s, &e[i], data_start, t, &chunk);
        /* the header's keys are distinct (JSON_REJECT_DUPLICATES): no search, no O(n^2) */
        if (st == NB_OK && nb__state_dict_append(d, e[i].name, t) != NB_OK) st = nb__oom(fn);
        nb__drop(t); /* the dict holds the only reference */
        if (st != NB_OK) goto fail;
    }
    nb__free(chunk);
    *out = d;
    return NB_OK;
oom:
    nb__oom(fn);
fail:
    nb__free(chunk);
    nb_state_dict_free(d);
    return nb__last_code();
}

/* ---- loading --------------------------------------------------------------------------- */

/* Parse and check the header text, then build the dict into *out. */
static nb_status parse_json(const source *s, const char *text, uint64_t hlen, nb_state_dict **out)
{
    const char *fn = s->fn;
    uint64_t data_start = 8 + hlen, data_len = s->size - data_start;
    entry *e = NULL;
    json_error_t jerr;
    nb_status st;
    nb__json_begin();
    json_t *root = json_loadb(text, (size_t)hlen, JSON_REJECT_DUPLICATES, &jerr);
    /* jansson's lexer drops a character whose buffer could not grow and parses on (a key
     * "a.lr" read as "alr"): any allocation that failed makes the header unusable */
    if (!root || nb__json_failed()) {
        if (nb__json_failed() || json_error_code(&jerr) == json_error_out_of_memory)
            st = nb__oom(fn);
        else
            st = nb__error(NB_EINVAL, fn, "the header is not valid JSON: %s (line %d, column %d)",
                           jerr.text, jerr.line, jerr.column);
        goto done;
    }
    if (!json_is_object(root)) {
        st = nb__error(NB_EINVAL, fn, "the header is not a JSON object");
        goto done;
    }
    size_t n = json_object_size(root) - (json_object_get(root, "__metadata__") != NULL);
    if (n && !(e = nb__alloc(n * sizeof *e, 16))) {
        st = nb__oom(fn);
        goto done;
    }
    if ((st = parse_header(fn, root, e, data_len)) != NB_OK) goto done;
    if ((st = check_tiling(fn, e, n, data_len)) != NB_OK) goto done;
    if (n) qsort(e, n, sizeof *e, by_index);
    st = build(s, root, e, n, data_start, out);
done:
    nb__free(e);
    json_decref(root);
    nb__json_end();
    return st;
}

static nb_status load(const source *s, nb_state_dict **out)
{
    const char *fn = s->fn;
    unsigned char len8[8];
    if (s->size < 8)
        return nb__error(NB_EINVAL, fn,
                         "%llu bytes are too few for a safetensors file (the header length "
                         "alone takes 8)",
                         (ull)s->size);
    nb_status st = source_read(s, 0, len8, 8);
    if (st != NB_OK) return st;
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = hlen << 8 | len8[i];
    if (hlen > NB_SAFETENSORS_MAX_HEADER)
        return nb__error(NB_EINVAL, fn, "the header length %llu is over the limit of %d bytes",
                         (ull)hlen, NB_SAFETENSORS_MAX_HEADER);
    if (hlen > s->size - 8)
        return nb__error(NB_EINVAL, fn,
                         "the header length %llu runs past the end of the input (%llu bytes "
                         "follow the length)",
                         (ull)hlen, (ull)(s->size - 8));
    if (s->in_memory) return parse_json(s, (const char *)s->mem + 8, hlen, out);
    char *text = nb__alloc(hlen ? (size_t)hlen : 1, 16);
    if (!text) return nb__oom(fn);
    st = source_read(s, 8, text, (size_t)hlen);
    if (st == NB_OK) st = parse_json(s, text, hlen, out);
    nb__free(text);
    return st;
}

nb_state_dict *nb_safetensors_load_buffer(const void *buf, size_t len)
{
    static const char fn[] = "nb_safetensors_load_buffer";
    static const unsigned char empty[1];
    nb_state_dict *d = NULL;
    if (!buf && len) {
        nb__error(NB_EINVAL, fn, "argument 'buf' is NULL");
        return NULL;
    }
    source s = {.fn = fn, .mem = buf ? buf : empty, .in_memory = true, .size = len};
    load(&s, &d);
    return d;
}

nb_state_dict *nb_safetensors_load(const char *path)
{
    static const char fn[] = "nb_safetensors_load";
    char why[128];
    nb_state_dict *d = NULL;
    if (!path) {
        nb__error(NB_EINVAL, fn, "argument 'path' is NULL");
        return NULL;
    }
    /* O_NONBLOCK: opening a FIFO must not wait for a writer (it is then refused below) */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        nb__error(NB_EIO, fn, "cannot open '%s': %s", path, nb__errno_str(errno, why, sizeof why));
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) != 0)
        nb__error(NB_EIO, fn, "cannot stat '%s': %s", path, nb__errno_str(errno, why, sizeof why));
    else if (S_ISDIR(st.st_mode))
        nb__error(NB_EIO, fn, "'%s' is a directory", path);
    else if (!S_ISREG(st.st_mode))
        nb__error(NB_EIO, fn, "'%s' is not a regular file", path);
    else
        load(&(source){.fn = fn, .fd = fd, .path = path, .size = (uint64_t)st.st_size}, &d);
    close(fd);
    return d;
}
