/*
 * Writing safetensors checkpoints. The whole header is made (and every name checked) before
 * the first byte is written, so a dict that cannot be saved writes nothing. A save to a path
 * replaces the file as a whole (nb__file_out: a temporary file renamed over it), so a reader
 * sees the old file or the new one, never a part, and a save that fails leaves the old file
 * as it was.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "io/internal.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the safetensors writer copies float32 data as is: port it before using a big-endian host"
#endif

typedef unsigned long long ull;

/* ---- the header ------------------------------------------------------------------------ */

/* Set obj[key] = value (stolen). A failure is memory, or a key that is not UTF-8. */
static nb_status set(const char *fn, json_t *obj, const char *key, json_t *value, const char *what,
                     int64_t i)
{
    if (value && json_object_set_new(obj, key, value) == 0) return NB_OK;
    if (!value || nb__json_failed()) return nb__oom(fn);
    return nb__error(NB_EINVAL, fn, "%s %lld is not valid UTF-8", what, (long long)i);
}

static json_t *metadata_json(const char *fn, const nb_state_dict *d, nb_status *st)
{
    json_t *meta = json_object();
    if (!meta) {
        *st = nb__oom(fn);
        return NULL;
    }
    for (int64_t i = 0; i < nb_state_dict_metadata_size(d); i++) {
        const char *key = nb_state_dict_metadata_key(d, i);
        json_t *value = json_string(nb__state_dict_metadata_value(d, i));
        if (!value && !nb__json_failed()) {
            *st = nb__error(NB_EINVAL, fn, "the value of metadata key %lld is not valid UTF-8",
                            (long long)i);
            break;
        }
        if ((*st = set(fn, meta, key, value, "metadata key", i)) != NB_OK) break;
    }
    if (*st == NB_OK) return meta;
    json_decref(meta);
    return NULL;
}

/* {"dtype": "F32", "shape": [...], "data_offsets": [begin, end]} */
static json_t *tensor_json(const nb_tensor *t, uint64_t begin, uint64_t end)
{
    json_t *e = json_object(), *shape = json_array(), *off = json_array();
    bool ok = e && shape && off;
    for (int i = 0; ok && i < nb_tensor_ndim(t); i++)
        ok = json_array_append_new(shape, json_integer(nb_tensor_shape(t)[i])) == 0;
    ok = ok && json_array_append_new(off, json_integer((json_int_t)begin)) == 0 &&
         json_array_append_new(off, json_integer((json_int_t)end)) == 0;
    ok = ok && json_object_set_new(e, "dtype", json_string("F32")) == 0;
    /* set_new steals its value, even when it fails */
    if (ok) {
        ok = json_object_set_new(e, "shape", shape) == 0;
        shape = NULL;
    }
    if (ok) {
        ok = json_object_set_new(e, "data_offsets", off) == 0;
        off = NULL;
    }
    if (ok) return e;
    json_decref(shape);
    json_decref(off);
    json_decref(e);
    return NULL;
}

static nb_status build_json(const char *fn, const nb_state_dict *d, json_t *root)
{
    nb_status st = NB_OK;
    if (nb_state_dict_metadata_size(d) > 0) {
        json_t *meta = metadata_json(fn, d, &st);
        if (!meta) return st;
        if ((st = set(fn, root, "__metadata__", meta, "metadata", 0)) != NB_OK) return st;
    }
    uint64_t off = 0;
    for (int64_t i = 0; i < nb_state_dict_size(d); i++) {
        const char *name = nb_state_dict_name(d, i);
        const nb_tensor *t = nb_state_dict_tensor(d, i);
        if (!strcmp(name, "__metadata__"))
            return nb__error(NB_EINVAL, fn,
                             "a tensor cannot be named \"__metadata__\", the metadata's key");
        uint64_t bytes = (uint64_t)nb_tensor_numel(t) * sizeof(float);
        if ((st = set(fn, root, name, tensor_json(t, off, off + bytes), "tensor name", i)) != NB_OK)
            return st;
        off += bytes;
    }
    return NB_OK;
}

/* The length, the header and its padding, in one block of *len bytes. */
static nb_status make_header(const char *fn, const nb_state_dict *d, unsigned char **out,
                             size_t *len)
{
    nb__json_begin();
    unsigned char *buf = NULL;
    json_t *root = json_object();
    nb_status st = root ? build_json(fn, d, root) : nb__oom(fn);
    if (st != NB_OK) goto done;
    /* json_dumpb with no buffer gives the size; 0 means it failed (it allocates to dump) */
    size_t n = json_dumpb(root, NULL, 0, JSON_COMPACT);
    if (n == 0) {
        st = nb__oom(fn);
        goto done;
    }
    size_t padded = (n + 7) / 8 * 8;
    if (padded > NB_SAFETENSORS_MAX_HEADER) {
        st = nb__error(NB_ERANGE, fn, "the header would be %zu bytes, over the limit of %d", padded,
                       NB_SAFETENSORS_MAX_HEADER);
        goto done;
    }
    if (!(buf = nb__alloc(8 + padded, 16)) ||
        json_dumpb(root, (char *)buf + 8, n, JSON_COMPACT) != n) {
        st = nb__oom(fn);
        goto done;
    }
    memset(buf + 8 + n, ' ', padded - n);
    for (int i = 0; i < 8; i++) buf[i] = (unsigned char)((uint64_t)padded >> (8 * i));
    *out = buf;
    *len = 8 + padded;
    buf = NULL;
done:
    nb__free(buf);
    json_decref(root);
    nb__json_end();
    return st;
}

/* ---- writing --------------------------------------------------------------------------- */

static uint64_t total_bytes(const nb_state_dict *d, size_t header)
{
    uint64_t total = header;
    for (int64_t i = 0; i < nb_state_dict_size(d); i++)
        total += (uint64_t)nb_tensor_numel(nb_state_dict_tensor(d, i)) * sizeof(float);
    return total;
}

/* The header, then each tensor's bytes; returns the writer's nonzero result, or 0. */
static int write_all(const nb_state_dict *d, const unsigned char *header, size_t len,
                     nb_write_fn writer, void *ctx, uint64_t *done)
{
    *done = 0;
    int rc = writer(ctx, header, len);
    if (rc) return rc;
    *done = len;
    for (int64_t i = 0; i < nb_state_dict_size(d); i++) {
        const nb_tensor *t = nb_state_dict_tensor(d, i);
        size_t bytes = (size_t)nb_tensor_numel(t) * sizeof(float);
        if (bytes == 0) continue;
        if ((rc = writer(ctx, nb_tensor_data_const(t), bytes))) return rc;
        *done += bytes;
    }
    return 0;
}

static const char *writer_error(int rc, char *buf, size_t n)
{
    if (rc > 0) return nb__errno_str(rc, buf, n);
    snprintf(buf, n, "it returned %d", rc);
    return buf;
}

nb_status nb_safetensors_save_to(const nb_state_dict *d, nb_write_fn writer, void *ctx)
{
    static const char fn[] = "nb_safetensors_save_to";
    if (!d) return nb__null(fn, "d");
    if (!writer) return nb__error(NB_EINVAL, fn, "argument 'writer' is NULL");
    unsigned char *header;
    size_t len;
    nb_status st = make_header(fn, d, &header, &len);
    if (st != NB_OK) return st;
    uint64_t done;
    int rc = write_all(d, header, len, writer, ctx, &done);
    if (rc) {
        char why[128];
        st = nb__error(NB_EIO, fn, "the writer failed after %llu of %llu bytes: %s", (ull)done,
                       (ull)total_bytes(d, len), writer_error(rc, why, sizeof why));
    }
    nb__free(header);
    return st;
}

/* ---- saving to a file ------------------------------------------------------------------ */

nb_status nb_safetensors_save(const nb_state_dict *d, const char *path)
{
    static const char fn[] = "nb_safetensors_save";
    if (!d) return nb__null(fn, "d");
    if (!path) return nb__error(NB_EINVAL, fn, "argument 'path' is NULL");
    unsigned char *header = NULL;
    size_t len;
    nb_status st = make_header(fn, d, &header, &len);
    if (st != NB_OK) return st;
    nb__file_out out;
    st = nb__file_out_open(&out, fn, path);
    if (st == NB_OK) {
        uint64_t done;
        int rc = write_all(d, header, len, nb__file_out_write, &out, &done);
        char why[128];
        if (rc)
            st = nb__error(NB_EIO, fn, "writing '%s' failed after %llu of %llu bytes: %s", path,
                           (ull)out.written, (ull)total_bytes(d, len),
                           nb__errno_str(rc, why, sizeof why));
        else
            st = nb__file_out_commit(&out, fn);
    }
    nb__file_out_abort(&out);
    nb__free(header);
    return st;
}
