/*
 * safetensors checkpoints: the bytes nabla writes, round trips (0-d, empty, 8-D, large, many
 * tensors, metadata, unicode names), files written by PyTorch (F32, and F16/BF16/F64
 * converted), every malformed file the loader must reject with its message (the same cases
 * are the fuzzer's seed corpus, kept in sync here), system errors, the atomic save under a
 * writer or a file system that fails at every byte, and allocation failure at every k.
 */
#define _GNU_SOURCE /* unshare, for the full-file-system test */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#if defined(__linux__)
#include <sched.h>
#include <sys/mount.h>
#endif

#include "data/safetensors_ref.h"
#include "testutil.h"

#define CORPUS_DIR NB_TEST_DATA_DIR "/../fuzz/corpus/safetensors"

/* ---- helpers --------------------------------------------------------------------------- */

/* d saved through nb_safetensors_save_to: the bytes (free() m.data). */
static nbt_membuf save_mem(const nb_state_dict *d)
{
    nbt_membuf m = NBT_MEMBUF;
    nb_status st = nb_safetensors_save_to(d, nbt_mem_write, &m);
    if (st != NB_OK) fail_msg("nb_safetensors_save_to: %s", nb_last_error()->message);
    return m;
}

/* dir holds exactly one entry, named name (no temporary file left behind). */
static void assert_only_file(const char *dir, const char *name)
{
    char names[8][256];
    int n = nbt_dir_entries(dir, names, 8);
    if (n != 1 || strcmp(names[0], name))
        fail_msg("%s holds %d entries (first: %s), want only %s", dir, n, n ? names[0] : "-", name);
}

static uint32_t bits_of(float v)
{
    uint32_t b;
    memcpy(&b, &v, 4);
    return b;
}

/* Same names, shapes, values (bit for bit) and metadata, in the same order. */
static void assert_dicts_equal(const nb_state_dict *a, const nb_state_dict *b)
{
    assert_int_equal(nb_state_dict_size(a), nb_state_dict_size(b));
    for (int64_t i = 0; i < nb_state_dict_size(a); i++) {
        assert_string_equal(nb_state_dict_name(a, i), nb_state_dict_name(b, i));
        const nb_tensor *x = nb_state_dict_tensor(a, i), *y = nb_state_dict_tensor(b, i);
        assert_int_equal(nb_tensor_ndim(x), nb_tensor_ndim(y));
        for (int k = 0; k < nb_tensor_ndim(x); k++)
            assert_int_equal(nb_tensor_shape(x)[k], nb_tensor_shape(y)[k]);
        assert_int_equal(nb_tensor_numel(x), nb_tensor_numel(y));
        if (nb_tensor_numel(x) > 0)
            assert_memory_equal(nb_tensor_data_const(x), nb_tensor_data_const(y),
                                (size_t)nb_tensor_numel(x) * 4);
    }
    assert_int_equal(nb_state_dict_metadata_size(a), nb_state_dict_metadata_size(b));
    for (int64_t i = 0; i < nb_state_dict_metadata_size(a); i++) {
        const char *k = nb_state_dict_metadata_key(a, i);
        assert_string_equal(k, nb_state_dict_metadata_key(b, i));
        assert_string_equal(nb_state_dict_metadata(a, k), nb_state_dict_metadata(b, k));
    }
}

/* Add a tensor of the given shape filled with distinct values (seeded by salt). */
static void add(nb_state_dict *d, const char *name, nb_shape shape, float salt)
{
    nb_tensor *t = nb_empty(shape);
    assert_non_null(t);
    float *p = nb_tensor_data(t);
    for (int64_t i = 0; i < nb_tensor_numel(t); i++) p[i] = salt + (float)i * 0.25f - 3.0f;
    assert_int_equal(nb_state_dict_set(d, name, t), NB_OK);
    nb_release(t);
}

/* Save to a file and to memory, load both back: each equals d; the two byte streams agree. */
static void round_trip(const nb_state_dict *d)
{
    char *dir = nbt_make_dir(), path[300];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    assert_int_equal(nb_safetensors_save(d, path), NB_OK);
    assert_only_file(dir, "model.safetensors");
    nb_state_dict *from_file = nb_safetensors_load(path);
    if (!from_file) fail_msg("%s", nb_last_error()->message);
    assert_dicts_equal(d, from_file);

    nbt_membuf m = save_mem(d);
    size_t len;
    unsigned char *bytes = nbt_read_file(path, &len);
    assert_int_equal(len, m.len);
    assert_memory_equal(bytes, m.data, len);
    nb_state_dict *from_mem = nb_safetensors_load_buffer(m.data, m.len);
    if (!from_mem) fail_msg("%s", nb_last_error()->message);
    assert_dicts_equal(d, from_mem);

    nb_state_dict_free(from_file);
    nb_state_dict_free(from_mem);
    free(bytes);
    free(m.data);
    nbt_rm_dir(dir);
}

/* ---- what nabla writes ----------------------------------------------------------------- */

static void test_exact_bytes(void **state)
{
    (void)state;
    nb_state_dict *d = nb_state_dict_new();
    nb_tensor *t = nb_from_data((const float[]){1.0f, -2.0f}, NB_SHAPE(2));
    nb_tensor *s = nb_scalar(0.5f);
    assert_int_equal(nb_state_dict_set(d, "w", t), NB_OK);
    assert_int_equal(nb_state_dict_set(d, "s", s), NB_OK);
    assert_int_equal(nb_state_dict_set_metadata(d, "k", "v"), NB_OK);
    nbt_membuf m = save_mem(d);
    static const char header[] = "{\"__metadata__\":{\"k\":\"v\"},"
                                 "\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                                 "\"s\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[8,12]}}";
    size_t n = strlen(header), padded = (n + 7) / 8 * 8;
    assert_int_equal(m.len, 8 + padded + 12);
    for (int i = 0; i < 8; i++) assert_int_equal(m.data[i], (padded >> (8 * i)) & 0xff);
    assert_memory_equal(m.data + 8, header, n);
    for (size_t i = n; i < padded; i++) assert_int_equal(m.data[8 + i], ' ');
    static const unsigned char data[] = {0, 0, 0x80, 0x3f, 0, 0, 0, 0xc0, 0, 0, 0, 0x3f};
    assert_memory_equal(m.data + 8 + padded, data, sizeof data);
    free(m.data);
    nb_release(t);
    nb_release(s);
    nb_state_dict_free(d);
}

/* An empty dict is "{}" and six spaces, as the reference implementation writes it. */
static void test_empty_dict(void **state)
{
    (void)state;
    nb_state_dict *d = nb_state_dict_new();
    nbt_membuf m = save_mem(d);
    static const unsigned char want[] = {8,   0,   0,   0,   0,   0,   0,   0,
                                         '{', '}', ' ', ' ', ' ', ' ', ' ', ' '};
    assert_int_equal(m.len, sizeof want);
    assert_memory_equal(m.data, want, sizeof want);
    nb_state_dict *back = nb_safetensors_load_buffer(m.data, m.len);
    assert_non_null(back);
    assert_int_equal(nb_state_dict_size(back), 0);
    assert_int_equal(nb_state_dict_metadata_size(back), 0);
    free(m.data);
    nb_state_dict_free(back);
    nb_state_dict_free(d);
}

/* ---- round trips ----------------------------------------------------------------------- */

static void test_round_trip_shapes(void **state)
{
    (void)state;
    nb_state_dict *d = nb_state_dict_new();
    add(d, "scalar", NB_SHAPE0, 7.0f);
    add(d, "empty", NB_SHAPE(0), 0.0f);
    add(d, "empty.middle", NB_SHAPE(2, 0, 3), 0.0f);
    add(d, "matrix", NB_SHAPE(3, 4), 1.0f);
    add(d, "eight.dims", NB_SHAPE(1, 2, 1, 2, 1, 2, 1, 3), 2.0f);
    add(d, "after.empty", NB_SHAPE(5), 3.0f);
    round_trip(d);
    nb_state_dict_free(d);
}

static void test_round_trip_metadata_and_names(void **state)
{
    (void)state;
    nb_state_dict *d = nb_state_dict_new();
    add(d, "層.重み", NB_SHAPE(2), 1.0f);
    add(d, "café/ü", NB_SHAPE(1), 2.0f);
    add(d, "emoji 🙂", NB_SHAPE(1), 3.0f);
    add(d, "quote\" back\\slash tab\t newline\n", NB_SHAPE(1), 4.0f);
    assert_int_equal(nb_state_dict_set_metadata(d, "format", "pt"), NB_OK);
    assert_int_equal(nb_state_dict_set_metadata(d, "", "empty key"), NB_OK);
    assert_int_equal(nb_state_dict_set_metadata(d, "empty value", ""), NB_OK);
    assert_int_equal(nb_state_dict_set_metadata(d, "ключ", "значение \"q\" \\ \n end"), NB_OK);
    assert_int_equal(nb_state_dict_set_metadata(d, "__metadata__", "a key like any other"), NB_OK);
    round_trip(d);
    nb_state_dict_free(d);
}

static void test_round_trip_many(void **state)
{
    (void)state;
    nb_state_dict *d = nb_state_dict_new();
    char name[32], value[32];
    for (int i = 0; i < 1000; i++) {
        snprintf(name, sizeof name, "layers.%d.weight", i);
        add(d, name, NB_SHAPE(i % 7, 3), (float)i);
    }
    for (int i = 0; i < 100; i++) {
        snprintf(name, sizeof name, "key%d", i);
        snprintf(value, sizeof value, "value %d", i * i);
        assert_int_equal(nb_state_dict_set_metadata(d, name, value), NB_OK);
    }
    round_trip(d);
    nb_state_dict_free(d);
}

static double seconds_since(const struct timespec *t0)
{
    struct timespec t1;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0->tv_nsec);
}

/*
 * A header of n metadata keys and n empty tensors, loaded and saved back: the seconds each
 * took into load_s and save_s.
 */
static void many_entries(int n, double *load_s, double *save_s)
{
    size_t cap = 64 + (size_t)n * 80, len = 8;
    unsigned char *b = malloc(cap);
    assert_non_null(b);
    len += (size_t)snprintf((char *)b + len, cap - len, "{\"__metadata__\":{");
    for (int i = 0; i < n; i++)
        len += (size_t)snprintf((char *)b + len, cap - len, "%s\"k%06d\":\"\"", i ? "," : "", i);
    b[len++] = '}';
    for (int i = 0; i < n; i++)
        len += (size_t)snprintf(
            (char *)b + len, cap - len,
            ",\"t%06d\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]}", i);
    b[len++] = '}';
    for (int i = 0; i < 8; i++) b[i] = (unsigned char)((uint64_t)(len - 8) >> (8 * i));
    struct timespec t0;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t0);
    nb_state_dict *d = nb_safetensors_load_buffer(b, len);
    *load_s = seconds_since(&t0);
    free(b);
    if (!d) fail_msg("%s", nb_last_error()->message);
    char want[16];
    assert_int_equal(nb_state_dict_size(d), n);
    assert_string_equal(nb_state_dict_name(d, 0), "t000000");
    snprintf(want, sizeof want, "t%06d", n - 1);
    assert_string_equal(nb_state_dict_name(d, n - 1), want);
    assert_int_equal(nb_state_dict_metadata_size(d), n);
    snprintf(want, sizeof want, "k%06d", n - 1);
    assert_string_equal(nb_state_dict_metadata_key(d, n - 1), want);
    nbt_membuf m = NBT_MEMBUF;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t0);
    nb_status st = nb_safetensors_save_to(d, nbt_mem_write, &m);
    *save_s = seconds_since(&t0);
    nb_state_dict_free(d);
    free(m.data);
    assert_int_equal(st, NB_OK);
}

/*
 * Loading and saving take linear time in the header's entries: each key and name goes into the
 * dict without a search through those before it, and a save takes each value by index, not by
 * key. Searching made 200 000 keys and tensors take minutes, and would take hours for the
 * millions of entries a 100 MB header can hold. Checked as a ratio of the thread's CPU time
 * within the run, so that a slow machine, valgrind or other jobs slow both sizes alike: 8
 * times the entries may take 8 times as long, and a search per entry (64 times) fails the
 * bound of 24 times, each size's best of three runs, taken in turn.
 */
static void test_load_many_entries(void **state)
{
    (void)state;
    enum { N = 40000 };
    double small_load = 1e30, small_save = 1e30, load = 1e30, save = 1e30, l, sv;
    for (int run = 0; run < 3; run++) { /* the best of three, so that other jobs weigh less */
        many_entries(N / 8, &l, &sv);
        small_load = l < small_load ? l : small_load;
        small_save = sv < small_save ? sv : small_save;
        many_entries(N, &l, &sv);
        load = l < load ? l : load;
        save = sv < save ? sv : save;
    }
    if (load > 24 * small_load + 0.05)
        fail_msg("loading %d entries took %.3f s, %d took %.3f s", N, load, N / 8, small_load);
    if (save > 24 * small_save + 0.05)
        fail_msg("saving %d entries took %.3f s, %d took %.3f s", N, save, N / 8, small_save);
}

/*
 * A file whose name is as long as the file system allows (255 bytes), saved over and over: the
 * temporary file next to it takes a short name where the name plus its suffix would be too
 * long, and none is left behind. Names of 230 to 255 bytes cover both kinds.
 */
static void test_save_long_name(void **state)
{
    (void)state;
    char *dir = nbt_make_dir(), name[256], path[600];
    nb_state_dict *d = nb_state_dict_new();
    add(d, "w", NB_SHAPE(3), 2.5f);
    for (int len = 230; len <= 255; len += 5) {
        memset(name, 'n', (size_t)len);
        name[len] = '\0';
        snprintf(path, sizeof path, "%s/%s", dir, name);
        for (int again = 0; again < 2; again++) { /* creates it, then replaces it */
            if (nb_safetensors_save(d, path) != NB_OK)
                fail_msg("name of %d bytes: %s", len, nb_last_error()->message);
            assert_only_file(dir, name);
        }
        nb_state_dict *back = nb_safetensors_load(path);
        if (!back) fail_msg("%s", nb_last_error()->message);
        assert_dicts_equal(d, back);
        nb_state_dict_free(back);
        assert_int_equal(unlink(path), 0);
    }
    nb_state_dict_free(d);
    nbt_rm_dir(dir);
}

static void test_round_trip_large(void **state)
{
    (void)state;
    nb_state_dict *d = nb_state_dict_new();
    add(d, "big", NB_SHAPE(1024, 4096), 0.5f); /* 16 MiB */
    add(d, "small", NB_SHAPE(3), 1.5f);
    round_trip(d);
    nb_state_dict_free(d);
}

/* Loading inside a scope: the dict holds the only reference, so the scope's end frees none. */
static void test_load_in_scope(void **state)
{
    (void)state;
    nb_state_dict *d = nb_state_dict_new();
    add(d, "w", NB_SHAPE(2, 2), 1.0f);
    nbt_membuf m = save_mem(d);
    nb_scope *s = nb_scope_begin();
    nb_state_dict *back = nb_safetensors_load_buffer(m.data, m.len);
    assert_int_equal(nb_scope_end(s), NB_OK);
    assert_non_null(back);
    assert_dicts_equal(d, back);
    nb_state_dict_free(back);
    nb_state_dict_free(d);
    free(m.data);
}

/* ---- files written by PyTorch ---------------------------------------------------------- */

static void check_ref(const nb_state_dict *d, const st_ref_tensor *ref, int n)
{
    assert_int_equal(nb_state_dict_size(d), n);
    for (int i = 0; i < n; i++) {
        assert_string_equal(nb_state_dict_name(d, i), ref[i].name);
        const nb_tensor *t = nb_state_dict_tensor(d, i);
        assert_int_equal(nb_tensor_ndim(t), ref[i].ndim);
        for (int k = 0; k < ref[i].ndim; k++)
            assert_int_equal(nb_tensor_shape(t)[k], ref[i].dims[k]);
        assert_int_equal(nb_tensor_numel(t), ref[i].numel);
        const float *v = nb_tensor_data_const(t);
        for (int64_t k = 0; k < ref[i].numel; k++)
            if (bits_of(v[k]) != ref[i].bits[k])
                fail_msg("%s (%s) element %lld: bits 0x%08x, PyTorch 0x%08x", ref[i].name,
                         ref[i].dtype, (long long)k, bits_of(v[k]), ref[i].bits[k]);
    }
}

static void test_torch_sequential(void **state)
{
    (void)state;
    const char *path = NB_TEST_DATA_DIR "/torch_sequential.safetensors";
    nb_state_dict *d = nb_safetensors_load(path);
    if (!d) fail_msg("%s", nb_last_error()->message);
    check_ref(d, st_ref_sequential, ST_REF_SEQUENTIAL_N);
    assert_int_equal(nb_state_dict_metadata_size(d), 1);
    assert_string_equal(nb_state_dict_metadata(d, "format"), "pt");
    size_t len;
    unsigned char *bytes = nbt_read_file(path, &len);
    nb_state_dict *m = nb_safetensors_load_buffer(bytes, len);
    assert_non_null(m);
    assert_dicts_equal(d, m);
    /* nabla writes what the reference writer wrote: same layout, same bytes */
    nbt_membuf out = save_mem(d);
    assert_int_equal(out.len, len);
    assert_memory_equal(out.data, bytes, len);
    free(out.data);
    free(bytes);
    nb_state_dict_free(m);
    nb_state_dict_free(d);
}

static void test_torch_dtypes(void **state)
{
    (void)state;
    nb_state_dict *d = nb_safetensors_load(NB_TEST_DATA_DIR "/torch_dtypes.safetensors");
    if (!d) fail_msg("%s", nb_last_error()->message);
    check_ref(d, st_ref_dtypes, ST_REF_DTYPES_N);
    assert_int_equal(nb_state_dict_metadata_size(d), 0);
    nb_state_dict_free(d);
}

/*
 * The seed-0 model in state_dict order, written by nabla for PyTorch to read:
 * scripts/check_safetensors_torch.py loads the file NB_SAFETENSORS_TORCH_OUT names (when
 * set) into torch.nn.Sequential with strict=True.
 */
static void test_write_for_torch(void **state)
{
    (void)state;
    nb_state_dict *d = nb_state_dict_new();
    for (int i = 0; i < ST_REF_SEQUENTIAL_N; i++) {
        const st_ref_tensor *r = NULL;
        for (int k = 0; k < ST_REF_SEQUENTIAL_N; k++)
            if (!strcmp(st_ref_sequential[k].name, st_ref_state_order[i]))
                r = &st_ref_sequential[k];
        assert_non_null(r);
        float v[16];
        memcpy(v, r->bits, (size_t)r->numel * 4);
        nb_tensor *t = nb_from_data(v, nb_shape_make(r->ndim, r->dims));
        assert_int_equal(nb_state_dict_set(d, r->name, t), NB_OK);
        nb_release(t);
    }
    assert_int_equal(nb_state_dict_set_metadata(d, "format", "pt"), NB_OK);
    assert_int_equal(nb_state_dict_set_metadata(d, "written_by", "nabla"), NB_OK);
    const char *out = getenv("NB_SAFETENSORS_TORCH_OUT");
    char *dir = nbt_make_dir(), path[300];
    snprintf(path, sizeof path, "%s/seq.safetensors", dir);
    if (out && out[0]) snprintf(path, sizeof path, "%s", out);
    assert_int_equal(nb_safetensors_save(d, path), NB_OK);
    nb_state_dict *back = nb_safetensors_load(path);
    assert_non_null(back);
    assert_dicts_equal(d, back);
    nb_state_dict_free(back);
    nb_state_dict_free(d);
    nbt_rm_dir(dir);
}

/* Large F16/BF16/F64 tensors: converted a chunk at a time, across chunk boundaries. */
static void test_convert_large(void **state)
{
    (void)state;
    const int64_t n = 100003; /* several 64 KiB chunks of each dtype, and a remainder */
    static const char *const dtypes[] = {"BF16", "F64"};
    for (int k = 0; k < 2; k++) {
        unsigned size = k == 0 ? 2 : 8;
        char header[160];
        int hl = snprintf(header, sizeof header,
                          "{\"x\":{\"dtype\":\"%s\",\"shape\":[%lld],\"data_offsets\":[0,%lld]}}",
                          dtypes[k], (long long)n, (long long)(n * size));
        size_t len = 8 + (size_t)hl + (size_t)(n * size);
        unsigned char *buf = malloc(len), *p = buf + 8 + hl;
        for (int i = 0; i < 8; i++) buf[i] = (unsigned char)((uint64_t)hl >> (8 * i));
        memcpy(buf + 8, header, (size_t)hl);
        /* values with 8 significant bits: exact in bfloat16, float and double */
        for (int64_t i = 0; i < n; i++) {
            float f = (float)(i % 255) * 0.5f - 60.0f;
            if (k == 0) {
                uint32_t b = bits_of(f) >> 16;
                p[2 * i] = (unsigned char)b;
                p[2 * i + 1] = (unsigned char)(b >> 8);
            } else {
                double v = (double)f;
                memcpy(p + 8 * i, &v, 8);
            }
        }
        nb_state_dict *d = nb_safetensors_load_buffer(buf, len);
        if (!d) fail_msg("%s", nb_last_error()->message);
        const float *v = nb_tensor_data_const(nb_state_dict_get(d, "x"));
        for (int64_t i = 0; i < n; i++)
            if (v[i] != (float)(i % 255) * 0.5f - 60.0f)
                fail_msg("%s element %lld: %g", dtypes[k], (long long)i, (double)v[i]);
        nb_state_dict_free(d);
        free(buf);
    }
}

/* ---- malformed files ------------------------------------------------------------------- */

/*
 * One input of the loader: the 8-byte length field (hlen), the header text, then data bytes
 * (a fixed pattern). ok inputs load; the others fail with code and a message that starts
 * with message. Each is also a seed of the fuzzer's corpus, the file <name>.
 */
enum {
    HDR = -1,     /* hlen: the header's length */
    RAW = -2,     /* no length field: the first `data` bytes of the header text are the input */
    ALL_ONES = -3 /* hlen: 2^64 - 1 */
};
typedef struct file_case {
    const char *name;
    const char *header;
    size_t data;
    long long hlen;
    nb_status code;
    const char *message;
} file_case;

#define ENTRY(dt, shape, b, e)                                                                     \
    "{\"dtype\":\"" dt "\",\"shape\":" shape ",\"data_offsets\":[" b "," e "]}"
#define F32_8 ENTRY("F32", "[2]", "0", "8")

static const file_case cases[] = {
    /* inputs that load */
    {"ok-empty", "{}      ", 0, HDR, NB_OK, NULL},
    {"ok-one", "{\"a\":" F32_8 "}", 8, HDR, NB_OK, NULL},
    {"ok-whitespace", " \n{ \"a\" : " F32_8 " }\t\r\n  ", 8, HDR, NB_OK, NULL},
    {"ok-metadata", "{\"__metadata__\":{\"format\":\"pt\",\"x\":\"\\u00e9\\n\"},\"a\":" F32_8 "}",
     8, HDR, NB_OK, NULL},
    {"ok-zero-size",
     "{\"z\":" ENTRY("F32", "[0,3]", "0", "0") ",\"a\":" F32_8
                                               ",\"y\":" ENTRY("F16", "[4,0]", "8", "8") "}",
     8, HDR, NB_OK, NULL},
    {"ok-header-order",
     "{\"b\":" ENTRY("F32", "[1]", "4", "8") ",\"a\":" ENTRY("F32", "[]", "0", "4") "}", 8, HDR,
     NB_OK, NULL},
    {"ok-dtypes",
     "{\"h\":" ENTRY("F16", "[2]", "0", "4") ",\"b\":" ENTRY(
         "BF16", "[2]", "4", "8") ",\"d\":" ENTRY("F64", "[1]", "8", "16") "}",
     16, HDR, NB_OK, NULL},
    {"ok-metadata-null", "{\"__metadata__\":null,\"a\":" F32_8 "}", 8, HDR, NB_OK, NULL},
    {"ok-extra-keys",
     "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"extra\":[1]}}", 4, HDR,
     NB_OK, NULL},
    /* the header length */
    {"bad-short", "\x02\x00\x00\x00\x00", 5, RAW, NB_EINVAL,
     "5 bytes are too few for a safetensors file (the header length alone takes 8)"},
    {"bad-nothing", "", 0, RAW, NB_EINVAL, "0 bytes are too few for a safetensors file"},
    {"bad-hlen-past-end", "{}", 0, 1000, NB_EINVAL,
     "the header length 1000 runs past the end of the input (2 bytes follow the length)"},
    {"bad-hlen-over-limit", "{}", 0, 100000001, NB_EINVAL,
     "the header length 100000001 is over the limit of 100000000 bytes"},
    {"bad-hlen-huge", "{}", 0, ALL_ONES, NB_EINVAL,
     "the header length 18446744073709551615 is over the limit of 100000000 bytes"},
    /* the JSON */
    {"bad-json-empty", "", 0, HDR, NB_EINVAL,
     "the header is not valid JSON: '[' or '{' expected near end of file (line 1, column 0)"},
    {"bad-json-truncated", "{\"a\":{\"dtype\":\"F32\",", 0, HDR, NB_EINVAL,
     "the header is not valid JSON: string or '}' expected near end of file (line 1, column 20)"},
    {"bad-json-trailing", "{} x", 0, HDR, NB_EINVAL,
     "the header is not valid JSON: end of file expected near 'x' (line 1, column 4)"},
    {"bad-json-utf8", "{\"\xff\":1}", 0, HDR, NB_EINVAL,
     "the header is not valid JSON: unable to decode byte 0xff near '\"' (line 1, column 2)"},
    {"bad-json-nul-key", "{\"a\\u0000b\":" F32_8 "}", 8, HDR, NB_EINVAL,
     "the header is not valid JSON: NUL byte in object key not supported near '\"a\\u0000b\"'"},
    {"bad-json-nan", "{\"a\":NaN}", 0, HDR, NB_EINVAL,
     "the header is not valid JSON: invalid token near 'NaN' (line 1, column 8)"},
    {"bad-json-big-int", "{\"a\":" ENTRY("F32", "[2]", "0", "99999999999999999999") "}", 8, HDR,
     NB_EINVAL, "the header is not valid JSON: too big integer near '99999999999999999999'"},
    {"bad-duplicate",
     "{\"a\":" ENTRY("F32", "[1]", "0", "4") ",\"a\":" ENTRY("F32", "[1]", "4", "8") "}", 8, HDR,
     NB_EINVAL, "the header is not valid JSON: duplicate object key near '\"a\"' (line 1, column"},
    {"bad-not-object", "[1,2]", 0, HDR, NB_EINVAL, "the header is not a JSON object"},
    /* entries */
    {"bad-entry-not-object", "{\"a\":5}", 0, HDR, NB_EINVAL,
     "tensor \"a\": the entry is not a JSON object"},
    {"bad-empty-name", "{\"\":" F32_8 "}", 8, HDR, NB_EINVAL, "a tensor has an empty name"},
    {"bad-dtype-missing", "{\"a\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4, HDR, NB_EINVAL,
     "tensor \"a\": \"dtype\" is missing or not a string"},
    {"bad-dtype-number", "{\"a\":{\"dtype\":32,\"shape\":[1],\"data_offsets\":[0,4]}}", 4, HDR,
     NB_EINVAL, "tensor \"a\": \"dtype\" is missing or not a string"},
    {"bad-dtype-unknown", "{\"a\":" ENTRY("F33", "[1]", "0", "4") "}", 4, HDR, NB_EINVAL,
     "tensor \"a\": unknown dtype \"F33\""},
    {"bad-name-control", "{\"a\\rb\\u001b[2Kc\\nd\\te\":" ENTRY("F33", "[1]", "0", "4") "}", 4, HDR,
     NB_EINVAL, "tensor \"a b [2Kc d e\": unknown dtype \"F33\""},
    {"bad-dtype-lowercase", "{\"a\":" ENTRY("f32", "[1]", "0", "4") "}", 4, HDR, NB_EINVAL,
     "tensor \"a\": unknown dtype \"f32\""},
    {"bad-dtype-i64", "{\"num_batches_tracked\":" ENTRY("I64", "[]", "0", "8") "}", 8, HDR,
     NB_EINVAL,
     "tensor \"num_batches_tracked\": dtype I64 is not supported (nabla loads F32, F16, BF16 and "
     "F64)"},
    {"bad-dtype-bool", "{\"m\":" ENTRY("BOOL", "[4]", "0", "4") "}", 4, HDR, NB_EINVAL,
     "tensor \"m\": dtype BOOL is not supported"},
    {"bad-dtype-f8", "{\"m\":" ENTRY("F8_E4M3", "[4]", "0", "4") "}", 4, HDR, NB_EINVAL,
     "tensor \"m\": dtype F8_E4M3 is not supported"},
    /* shapes */
    {"bad-shape-missing", "{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4, HDR, NB_EINVAL,
     "tensor \"a\": \"shape\" is missing or not an array"},
    {"bad-shape-number", "{\"a\":" ENTRY("F32", "1", "0", "4") "}", 4, HDR, NB_EINVAL,
     "tensor \"a\": \"shape\" is missing or not an array"},
    {"bad-shape-negative", "{\"a\":" ENTRY("F32", "[2,-3]", "0", "8") "}", 8, HDR, NB_EINVAL,
     "tensor \"a\": shape dimension 1 is not a non-negative integer"},
    {"bad-shape-real", "{\"a\":" ENTRY("F32", "[2.0]", "0", "8") "}", 8, HDR, NB_EINVAL,
     "tensor \"a\": shape dimension 0 is not a non-negative integer"},
    {"bad-shape-string", "{\"a\":" ENTRY("F32", "[\"2\"]", "0", "8") "}", 8, HDR, NB_EINVAL,
     "tensor \"a\": shape dimension 0 is not a non-negative integer"},
    {"bad-shape-9d", "{\"a\":" ENTRY("F32", "[1,1,1,1,1,1,1,1,1]", "0", "4") "}", 4, HDR, NB_EINVAL,
     "tensor \"a\": shape has 9 dimensions, more than 8"},
    {"bad-shape-overflow", "{\"a\":" ENTRY("F32", "[4294967296,4294967296]", "0", "0") "}", 0, HDR,
     NB_EINVAL, "tensor \"a\": shape [4294967296, 4294967296] has too many elements"},
    /* an empty tensor whose other dims are huge: the elements are counted in order from 1, as
     * the safetensors library and torch count them, so only a product on the way overflows */
    {"ok-shape-huge-empty", "{\"a\":" ENTRY("F32", "[4611686018427387904,0]", "0", "0") "}", 0, HDR,
     NB_OK, NULL},
    {"ok-shape-huge-empty-f16", "{\"a\":" ENTRY("F16", "[0,9223372036854775807,5]", "0", "0") "}",
     0, HDR, NB_OK, NULL},
    {"bad-shape-overflow-empty",
     "{\"a\":" ENTRY("F32", "[1099511627776,1099511627776,0]", "0", "0") "}", 0, HDR, NB_EINVAL,
     "tensor \"a\": shape [1099511627776, 1099511627776, 0] has too many elements"},
    {"bad-shape-size", "{\"a\":" ENTRY("F32", "[2,3]", "0", "16") "}", 16, HDR, NB_EINVAL,
     "tensor \"a\": shape [2, 3] of F32 is 24 bytes, but data_offsets [0, 16] hold 16"},
    {"bad-shape-size-f16", "{\"a\":" ENTRY("F16", "[4]", "0", "16") "}", 16, HDR, NB_EINVAL,
     "tensor \"a\": shape [4] of F16 is 8 bytes, but data_offsets [0, 16] hold 16"},
    {"bad-shape-size-0d", "{\"a\":" ENTRY("F32", "[]", "0", "8") "}", 8, HDR, NB_EINVAL,
     "tensor \"a\": shape [] of F32 is 4 bytes, but data_offsets [0, 8] hold 8"},
    /* data_offsets */
    {"bad-offsets-missing", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4, HDR, NB_EINVAL,
     "tensor \"a\": \"data_offsets\" is not [begin, end] with two non-negative integers"},
    {"bad-offsets-one", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4]}}", 4, HDR,
     NB_EINVAL, "tensor \"a\": \"data_offsets\" is not [begin, end]"},
    {"bad-offsets-three", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4,8]}}", 8,
     HDR, NB_EINVAL, "tensor \"a\": \"data_offsets\" is not [begin, end]"},
    {"bad-offsets-negative", "{\"a\":" ENTRY("F32", "[1]", "-4", "0") "}", 4, HDR, NB_EINVAL,
     "tensor \"a\": \"data_offsets\" is not [begin, end]"},
    {"bad-offsets-real", "{\"a\":" ENTRY("F32", "[1]", "0", "4.0") "}", 4, HDR, NB_EINVAL,
     "tensor \"a\": \"data_offsets\" is not [begin, end]"},
    {"bad-offsets-reversed", "{\"a\":" ENTRY("F32", "[1]", "8", "4") "}", 8, HDR, NB_EINVAL,
     "tensor \"a\": data_offsets [8, 4] end before they begin"},
    {"bad-offsets-past-end", "{\"a\":" ENTRY("F32", "[100]", "0", "400") "}", 16, HDR, NB_EINVAL,
     "tensor \"a\": data_offsets [0, 400] run past the end of the data section (16 bytes)"},
    {"bad-offsets-huge",
     "{\"a\":" ENTRY("F32", "[1]", "9223372036854775803", "9223372036854775807") "}", 4, HDR,
     NB_EINVAL,
     "tensor \"a\": data_offsets [9223372036854775803, 9223372036854775807] run past the end of "
     "the data section (4 bytes)"},
    {"bad-overlap",
     "{\"a\":" ENTRY("F32", "[4]", "0", "16") ",\"b\":" ENTRY("F32", "[4]", "8", "24") "}", 24, HDR,
     NB_EINVAL, "tensors \"a\" and \"b\" overlap (data_offsets [0, 16] and [8, 24])"},
    {"bad-overlap-same", "{\"a\":" F32_8 ",\"b\":" F32_8 "}", 8, HDR, NB_EINVAL,
     "tensors \"a\" and \"b\" overlap (data_offsets [0, 8] and [0, 8])"},
    {"bad-overlap-empty-inside", "{\"a\":" F32_8 ",\"z\":" ENTRY("F32", "[0]", "4", "4") "}", 8,
     HDR, NB_EINVAL, "tensors \"a\" and \"z\" overlap (data_offsets [0, 8] and [4, 4])"},
    {"bad-overlap-unsorted", "{\"b\":" ENTRY("F32", "[2]", "4", "12") ",\"a\":" F32_8 "}", 12, HDR,
     NB_EINVAL, "tensors \"a\" and \"b\" overlap (data_offsets [0, 8] and [4, 12])"},
    {"bad-gap", "{\"a\":" F32_8 ",\"b\":" ENTRY("F32", "[2]", "12", "20") "}", 20, HDR, NB_EINVAL,
     "bytes 8 to 12 of the data section belong to no tensor (a gap before \"b\")"},
    {"bad-gap-start", "{\"a\":" ENTRY("F32", "[2]", "4", "12") "}", 12, HDR, NB_EINVAL,
     "bytes 0 to 4 of the data section belong to no tensor (a gap before \"a\")"},
    {"bad-trailing", "{\"a\":" F32_8 "}", 12, HDR, NB_EINVAL,
     "the last 4 bytes of the data section belong to no tensor"},
    {"bad-trailing-no-tensor", "{}", 4, HDR, NB_EINVAL,
     "the last 4 bytes of the data section belong to no tensor"},
    /* metadata */
    {"bad-metadata-string", "{\"__metadata__\":\"pt\"}", 0, HDR, NB_EINVAL,
     "\"__metadata__\" is not a JSON object"},
    {"bad-metadata-number", "{\"__metadata__\":{\"format\":\"pt\",\"epoch\":3}}", 0, HDR, NB_EINVAL,
     "metadata \"epoch\" is not a string"},
    {"bad-metadata-null", "{\"a\":" F32_8 ",\"__metadata__\":{\"k\":null}}", 8, HDR, NB_EINVAL,
     "metadata \"k\" is not a string"},
    {"bad-metadata-nested", "{\"__metadata__\":{\"k\":{\"x\":\"y\"}}}", 0, HDR, NB_EINVAL,
     "metadata \"k\" is not a string"},
};
#define N_CASES (sizeof cases / sizeof cases[0])

/* The input bytes of case c (free() them). */
static unsigned char *case_bytes(const file_case *c, size_t *len)
{
    size_t hl = strlen(c->header);
    if (c->hlen == RAW) {
        unsigned char *b = malloc(c->data + 1);
        memcpy(b, c->header, c->data);
        *len = c->data;
        return b;
    }
    uint64_t field = c->hlen == HDR ? hl : c->hlen == ALL_ONES ? UINT64_MAX : (uint64_t)c->hlen;
    *len = 8 + hl + c->data;
    unsigned char *b = malloc(*len);
    for (int i = 0; i < 8; i++) b[i] = (unsigned char)(field >> (8 * i));
    memcpy(b + 8, c->header, hl);
    for (size_t i = 0; i < c->data; i++) b[8 + hl + i] = (unsigned char)(i * 37 + 11);
    return b;
}

static void check_case(const file_case *c, nb_state_dict *d, const char *fn)
{
    if (c->code == NB_OK) {
        if (!d) fail_msg("%s: %s", c->name, nb_last_error()->message);
        return;
    }
    if (d) fail_msg("%s: loaded with %s", c->name, fn);
    char want[512];
    snprintf(want, sizeof want, "%s: %s", fn, c->message);
    const nb_error *e = nb_last_error();
    if (e->code != c->code || strncmp(e->message, want, strlen(want)) || strchr(e->message, '\n'))
        fail_msg("%s: got %s \"%s\", want %s \"%s...\"", c->name, nb_status_name(e->code),
                 e->message, nb_status_name(c->code), want);
}

/* Every case through the buffer loader and, written to a file, through the file loader. */
static void test_bad_files(void **state)
{
    (void)state;
    char *dir = nbt_make_dir(), path[300];
    snprintf(path, sizeof path, "%s/case.safetensors", dir);
    for (size_t i = 0; i < N_CASES; i++) {
        size_t len;
        unsigned char *b = case_bytes(&cases[i], &len);
        nb_error_clear();
        nb_state_dict *d = nb_safetensors_load_buffer(b, len);
        check_case(&cases[i], d, "nb_safetensors_load_buffer");
        if (d) { /* what loads saves and loads back the same */
            nbt_membuf m = save_mem(d);
            nb_state_dict *again = nb_safetensors_load_buffer(m.data, m.len);
            assert_non_null(again);
            assert_dicts_equal(d, again);
            nb_state_dict_free(again);
            free(m.data);
        }
        nb_state_dict_free(d);
        nbt_write_file(path, b, len);
        d = nb_safetensors_load(path);
        check_case(&cases[i], d, "nb_safetensors_load");
        nb_state_dict_free(d);
        free(b);
    }
    nbt_rm_dir(dir);
}

static const file_case *find_case(const char *name)
{
    for (size_t i = 0; i < N_CASES; i++)
        if (!strcmp(cases[i].name, name)) return &cases[i];
    fail_msg("no case %s", name);
    return NULL;
}

/* The tensors come in header order, each with its own bytes, whatever the data order. */
static void test_header_order(void **state)
{
    (void)state;
    size_t len;
    unsigned char *b = case_bytes(find_case("ok-header-order"), &len);
    nb_state_dict *d = nb_safetensors_load_buffer(b, len);
    assert_non_null(d);
    assert_string_equal(nb_state_dict_name(d, 0), "b");
    assert_string_equal(nb_state_dict_name(d, 1), "a");
    const unsigned char *data = b + len - 8;
    assert_int_equal(nb_tensor_ndim(nb_state_dict_get(d, "a")), 0);
    assert_memory_equal(nb_tensor_data_const(nb_state_dict_get(d, "a")), data, 4);
    assert_memory_equal(nb_tensor_data_const(nb_state_dict_get(d, "b")), data + 4, 4);
    nb_state_dict_free(d);
    free(b);

    b = case_bytes(find_case("ok-zero-size"), &len);
    d = nb_safetensors_load_buffer(b, len);
    assert_non_null(d);
    assert_int_equal(nb_state_dict_size(d), 3);
    assert_int_equal(nb_tensor_numel(nb_state_dict_get(d, "z")), 0);
    assert_int_equal(nb_tensor_shape(nb_state_dict_get(d, "y"))[0], 4);
    assert_memory_equal(nb_tensor_data_const(nb_state_dict_get(d, "a")), b + len - 8, 8);
    nb_state_dict_free(d);
    free(b);

    b = case_bytes(find_case("ok-metadata"), &len);
    d = nb_safetensors_load_buffer(b, len);
    assert_non_null(d);
    assert_string_equal(nb_state_dict_metadata_key(d, 0), "format");
    assert_string_equal(nb_state_dict_metadata(d, "x"), "\xc3\xa9\n");
    nb_state_dict_free(d);
    free(b);

    b = case_bytes(find_case("ok-metadata-null"), &len); /* null: no metadata */
    d = nb_safetensors_load_buffer(b, len);
    assert_non_null(d);
    assert_int_equal(nb_state_dict_metadata_size(d), 0);
    assert_int_equal(nb_state_dict_size(d), 1);
    nb_state_dict_free(d);
    free(b);
}

/*
 * The fuzzer's seed corpus holds every case above and the PyTorch files, byte for byte.
 * NB_UPDATE_CORPUS=1 writes them instead of comparing.
 */
static void test_corpus_in_sync(void **state)
{
    (void)state;
    const char *update = getenv("NB_UPDATE_CORPUS");
    bool write = update && !strcmp(update, "1");
    char path[600];
    static const char *const copies[] = {"torch_sequential.safetensors",
                                         "torch_dtypes.safetensors"};
    for (size_t i = 0; i < N_CASES + 2; i++) {
        size_t len, have_len;
        unsigned char *b;
        if (i < N_CASES) {
            b = case_bytes(&cases[i], &len);
            snprintf(path, sizeof path, "%s/%s", CORPUS_DIR, cases[i].name);
        } else {
            snprintf(path, sizeof path, "%s/%s", NB_TEST_DATA_DIR, copies[i - N_CASES]);
            b = nbt_read_file(path, &len);
            assert_non_null(b);
            snprintf(path, sizeof path, "%s/ok-%s", CORPUS_DIR, copies[i - N_CASES]);
        }
        if (write) nbt_write_file(path, b, len);
        unsigned char *have = nbt_read_file(path, &have_len);
        if (!have || have_len != len || memcmp(have, b, len))
            fail_msg("%s is missing or differs from its case: run this test with "
                     "NB_UPDATE_CORPUS=1",
                     path);
        free(have);
        free(b);
    }
}

/* ---- system errors --------------------------------------------------------------------- */

static void test_load_errors(void **state)
{
    (void)state;
    char *dir = nbt_make_dir(), path[300];
    nb_error_clear();
    assert_null(nb_safetensors_load(NULL));
    assert_error(NB_EINVAL, "nb_safetensors_load: argument 'path' is NULL");
    assert_null(nb_safetensors_load_buffer(NULL, 8));
    assert_error(NB_EINVAL, "nb_safetensors_load_buffer: argument 'buf' is NULL");
    assert_null(nb_safetensors_load_buffer(NULL, 0));
    assert_error(NB_EINVAL, "nb_safetensors_load_buffer: 0 bytes are too few");

    snprintf(path, sizeof path, "%s/missing.safetensors", dir);
    assert_null(nb_safetensors_load(path));
    char want[1024];
    snprintf(want, sizeof want, "nb_safetensors_load: cannot open '%s': No such file or directory",
             path);
    assert_error(NB_EIO, want);

    assert_null(nb_safetensors_load(dir));
    snprintf(want, sizeof want, "nb_safetensors_load: '%s' is a directory", dir);
    assert_error(NB_EIO, want);

    snprintf(path, sizeof path, "%s/fifo", dir);
    assert_int_equal(mkfifo(path, 0600), 0);
    assert_null(nb_safetensors_load(path));
    snprintf(want, sizeof want, "nb_safetensors_load: '%s' is not a regular file", path);
    assert_error(NB_EIO, want);
    nbt_rm_dir(dir);
}

static void test_save_errors(void **state)
{
    (void)state;
    char *dir = nbt_make_dir(), path[300], want[1024];
    nb_state_dict *d = nb_state_dict_new();
    add(d, "w", NB_SHAPE(2), 1.0f);
    nbt_membuf m = NBT_MEMBUF;
    nb_error_clear();
    assert_int_equal(nb_safetensors_save(NULL, "x"), NB_EINVAL);
    assert_error(NB_EINVAL, "nb_safetensors_save: argument 'd' is NULL");
    assert_int_equal(nb_safetensors_save_to(NULL, nbt_mem_write, &m), NB_EINVAL);
    assert_error(NB_EINVAL, "nb_safetensors_save_to: argument 'd' is NULL");
    assert_int_equal(nb_safetensors_save(d, NULL), NB_EINVAL);
    assert_error(NB_EINVAL, "nb_safetensors_save: argument 'path' is NULL");
    assert_int_equal(nb_safetensors_save_to(d, NULL, NULL), NB_EINVAL);
    assert_error(NB_EINVAL, "nb_safetensors_save_to: argument 'writer' is NULL");
    /* a NULL dict from a failed call keeps that call's error */
    assert_null(nb_safetensors_load(NULL));
    assert_int_equal(nb_safetensors_save(nb_safetensors_load(NULL), "x"), NB_EINVAL);
    assert_error(NB_EINVAL, "nb_safetensors_load: argument 'path' is NULL");

    /* names the format cannot hold: nothing is written */
    nb_state_dict *bad = nb_state_dict_new();
    add(bad, "ok", NB_SHAPE(1), 1.0f);
    add(bad, "__metadata__", NB_SHAPE(1), 1.0f);
    assert_int_equal(nb_safetensors_save_to(bad, nbt_mem_write, &m), NB_EINVAL);
    assert_error(
        NB_EINVAL,
        "nb_safetensors_save_to: a tensor cannot be named \"__metadata__\", the metadata's key");
    assert_int_equal(m.len, 0);
    nb_state_dict_free(bad);
    bad = nb_state_dict_new();
    add(bad, "ok", NB_SHAPE(1), 1.0f);
    add(bad, "bad\xff", NB_SHAPE(1), 1.0f);
    assert_int_equal(nb_safetensors_save_to(bad, nbt_mem_write, &m), NB_EINVAL);
    assert_error(NB_EINVAL, "nb_safetensors_save_to: tensor name 1 is not valid UTF-8");
    nb_state_dict_free(bad);
    bad = nb_state_dict_new();
    assert_int_equal(nb_state_dict_set_metadata(bad, "fine", "fine"), NB_OK);
    assert_int_equal(nb_state_dict_set_metadata(bad, "k\xc3", "v"), NB_OK);
    assert_int_equal(nb_safetensors_save_to(bad, nbt_mem_write, &m), NB_EINVAL);
    assert_error(NB_EINVAL, "nb_safetensors_save_to: metadata key 1 is not valid UTF-8");
    assert_int_equal(nb_state_dict_set_metadata(bad, "k\xc3", "v\xe2\x82"), NB_OK);
    snprintf(path, sizeof path, "%s/bad.safetensors", dir);
    assert_int_equal(nb_safetensors_save(bad, path), NB_EINVAL);
    assert_error(NB_EINVAL, "nb_safetensors_save: the value of metadata key 1 is not valid UTF-8");
    nb_state_dict_free(bad);
    assert_int_equal(m.len, 0);

    /* the target is a directory; the directory does not exist */
    assert_int_equal(nb_safetensors_save(d, dir), NB_EIO);
    snprintf(want, sizeof want, "nb_safetensors_save: '%s' exists and is not a regular file", dir);
    assert_error(NB_EIO, want);
    snprintf(path, sizeof path, "%s/no/such/dir/x.safetensors", dir);
    assert_int_equal(nb_safetensors_save(d, path), NB_EIO);
    snprintf(want, sizeof want,
             "nb_safetensors_save: cannot create a temporary file next to '%s': No such file or "
             "directory",
             path);
    assert_error(NB_EIO, want);
    assert_int_equal(nbt_dir_entries(dir, NULL, 0), 0);
    /* an empty path names no file, as for open(""): refused before anything is written */
    assert_int_equal(nb_safetensors_save(d, ""), NB_EIO);
    assert_error(NB_EIO, "nb_safetensors_save: cannot resolve '': No such file or directory");

    /* a symbolic link: the file it points to is replaced, the link stays */
    char target[300];
    snprintf(target, sizeof target, "%s/real.safetensors", dir);
    snprintf(path, sizeof path, "%s/link.safetensors", dir);
    nbt_write_file(target, "old", 3);
    assert_int_equal(symlink("real.safetensors", path), 0);
    assert_int_equal(nb_safetensors_save(d, path), NB_OK);
    struct stat st;
    assert_int_equal(lstat(path, &st), 0);
    assert_true(S_ISLNK(st.st_mode));
    nb_state_dict *back = nb_safetensors_load(target);
    assert_non_null(back);
    assert_dicts_equal(d, back);
    nb_state_dict_free(back);
    assert_int_equal(nbt_dir_entries(dir, NULL, 0), 2);

    /* a link to a file not there yet, through a second link: the file is made, links stay */
    assert_int_equal(unlink(target), 0);
    char hop[300];
    snprintf(hop, sizeof hop, "%s/hop.safetensors", dir);
    assert_int_equal(unlink(path), 0);
    assert_int_equal(symlink("hop.safetensors", path), 0);
    assert_int_equal(symlink(target, hop), 0); /* absolute */
    assert_int_equal(nb_safetensors_save(d, path), NB_OK);
    assert_int_equal(lstat(path, &st), 0);
    assert_true(S_ISLNK(st.st_mode));
    assert_int_equal(lstat(hop, &st), 0);
    assert_true(S_ISLNK(st.st_mode));
    back = nb_safetensors_load(target);
    assert_non_null(back);
    assert_dicts_equal(d, back);
    nb_state_dict_free(back);
    assert_int_equal(nbt_dir_entries(dir, NULL, 0), 3);
    /* links in a circle: refused, nothing written */
    assert_int_equal(unlink(hop), 0);
    assert_int_equal(symlink("link.safetensors", hop), 0);
    assert_int_equal(nb_safetensors_save(d, path), NB_EIO);
    snprintf(want, sizeof want,
             "nb_safetensors_save: cannot resolve '%s': Too many levels of symbolic links", path);
    assert_error(NB_EIO, want);
    assert_int_equal(nbt_dir_entries(dir, NULL, 0), 3);
    assert_int_equal(unlink(hop), 0);
    assert_int_equal(unlink(path), 0);
    nb_state_dict_free(d);
    nbt_rm_dir(dir);
}

/* A header over the limit is refused before anything is written. */
static void test_save_header_limit(void **state)
{
    (void)state;
    size_t n = NB_SAFETENSORS_MAX_HEADER;
    char *big = malloc(n + 1);
    memset(big, 'x', n);
    big[n] = '\0';
    nb_state_dict *d = nb_state_dict_new();
    assert_int_equal(nb_state_dict_set_metadata(d, "k", big), NB_OK);
    free(big);
    nbt_membuf m = NBT_MEMBUF;
    assert_int_equal(nb_safetensors_save_to(d, nbt_mem_write, &m), NB_ERANGE);
    assert_error(NB_ERANGE,
                 "nb_safetensors_save_to: the header would be 100000032 bytes, over the limit of "
                 "100000000");
    assert_int_equal(m.len, 0);
    nb_state_dict_free(d);
}

/* ---- failures part-way through a save -------------------------------------------------- */

static nb_state_dict *small_dict(float salt)
{
    nb_state_dict *d = nb_state_dict_new();
    add(d, "0.weight", NB_SHAPE(3, 4), salt);
    add(d, "0.bias", NB_SHAPE(3), salt + 1);
    add(d, "empty", NB_SHAPE(0), 0);
    add(d, "2.weight", NB_SHAPE(2, 3), salt + 2);
    assert_int_equal(nb_state_dict_set_metadata(d, "epoch", "3"), NB_OK);
    return d;
}

static int fail_writer(void *ctx, const void *data, size_t size)
{
    (void)ctx, (void)data, (void)size;
    return -7;
}

static int fd_writer(void *ctx, const void *data, size_t size)
{
    return write(*(int *)ctx, data, size) == (ssize_t)size ? 0 : errno;
}

/* A writer that takes k bytes and then fails, for every k: the error says after how many. */
static void test_writer_failure_sweep(void **state)
{
    (void)state;
    nb_state_dict *d = small_dict(1.0f);
    nbt_membuf full = save_mem(d);
    /* the writer's calls end at: the header, 0.weight, 0.bias, (empty: no call), 2.weight */
    size_t header = full.len - (12 + 3 + 6) * 4;
    size_t ends[] = {0, header, header + 48, header + 60};
    char want[200];
    for (size_t k = 0; k < full.len; k++) {
        nbt_membuf m = {NULL, 0, 0, k};
        nb_error_clear();
        assert_int_equal(nb_safetensors_save_to(d, nbt_mem_write, &m), NB_EIO);
        size_t done = 0;
        for (int i = 0; i < 4; i++)
            if (ends[i] <= k) done = ends[i];
        snprintf(want, sizeof want,
                 "nb_safetensors_save_to: the writer failed after %zu of %zu bytes: No space left "
                 "on device",
                 done, full.len);
        assert_error(NB_EIO, want);
        assert_int_equal(m.len, k);
        assert_memory_equal(m.data, full.data, k);
        free(m.data);
    }
    /* a writer's own code is reported as is */
    assert_int_equal(nb_safetensors_save_to(d, fail_writer, NULL), NB_EIO);
    snprintf(want, sizeof want,
             "nb_safetensors_save_to: the writer failed after 0 of %zu bytes: it returned -7",
             full.len);
    assert_error(NB_EIO, want);
    /* /dev/full: every write fails with ENOSPC */
    int fd = open("/dev/full", O_WRONLY);
    if (fd >= 0) {
        assert_int_equal(nb_safetensors_save_to(d, fd_writer, &fd), NB_EIO);
        assert_error(NB_EIO, "the writer failed after 0 of");
        assert_error(NB_EIO, "bytes: No space left on device");
        close(fd);
    }
    free(full.data);
    nb_state_dict_free(d);
}

/*
 * A file system that takes k bytes of the new file and then fails, for every k (the file
 * size limit makes write fail with EFBIG past k): the old file is intact, no temporary file
 * is left, and the save that follows with no limit replaces it.
 */
static void test_save_fsize_sweep(void **state)
{
    (void)state;
    char *dir = nbt_make_dir(), path[300], want[1024];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    nb_state_dict *old = small_dict(1.0f), *new = small_dict(5.0f);
    assert_int_equal(nb_safetensors_save(old, path), NB_OK);
    size_t old_len, len;
    unsigned char *old_bytes = nbt_read_file(path, &old_len);
    nbt_membuf full = save_mem(new);
    struct rlimit saved;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &saved), 0);
    void (*prev)(int) = signal(SIGXFSZ, SIG_IGN);
    for (size_t k = 0; k < full.len; k++) {
        struct rlimit lim = {(rlim_t)k, saved.rlim_max};
        assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
        nb_error_clear();
        nb_status st = nb_safetensors_save(new, path);
        assert_int_equal(setrlimit(RLIMIT_FSIZE, &saved), 0);
        assert_int_equal(st, NB_EIO);
        snprintf(want, sizeof want,
                 "nb_safetensors_save: writing '%s' failed after %zu of %zu bytes: File too large",
                 path, k, full.len);
        assert_error(NB_EIO, want);
        unsigned char *now = nbt_read_file(path, &len);
        assert_int_equal(len, old_len);
        assert_memory_equal(now, old_bytes, len);
        free(now);
        assert_only_file(dir, "model.safetensors");
    }
    signal(SIGXFSZ, prev);
    assert_int_equal(nb_safetensors_save(new, path), NB_OK);
    assert_only_file(dir, "model.safetensors");
    unsigned char *now = nbt_read_file(path, &len);
    assert_int_equal(len, full.len);
    assert_memory_equal(now, full.data, len);
    free(now);
    free(full.data);
    free(old_bytes);
    nb_state_dict_free(old);
    nb_state_dict_free(new);
    nbt_rm_dir(dir);
}

/*
 * A real full file system: a 64 KiB tmpfs mounted in a private mount namespace of a child
 * process. Needs the privilege to mount (root with CAP_SYS_ADMIN); skipped elsewhere.
 * The child reports through its exit status: 0 passed, 77 could not mount, else the check
 * that failed.
 */
static int full_fs_child(const char *dir)
{
#if defined(__linux__)
    char path[300];
    if (unshare(CLONE_NEWNS) != 0 || mount("none", "/", "none", MS_REC | MS_PRIVATE, NULL) != 0 ||
        mount("nabla-test", dir, "tmpfs", 0, "size=64k") != 0)
        return 77;
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    nb_state_dict *old = small_dict(1.0f), *big = nb_state_dict_new();
    add(big, "big", NB_SHAPE(256, 256), 1.0f); /* 256 KiB: cannot fit */
    if (nb_safetensors_save(old, path) != NB_OK) return 1;
    size_t old_len, len;
    unsigned char *old_bytes = nbt_read_file(path, &old_len);
    if (nb_safetensors_save(big, path) != NB_EIO) return 2;
    const nb_error *e = nb_last_error();
    if (!strstr(e->message, "failed after") || !strstr(e->message, "No space left on device"))
        return 3;
    unsigned char *now = nbt_read_file(path, &len);
    if (!now || len != old_len || memcmp(now, old_bytes, len)) return 4;
    char names[8][256];
    if (nbt_dir_entries(dir, names, 8) != 1) return 5;
    nb_state_dict *back = nb_safetensors_load(path);
    if (!back) return 6;
    nb_state_dict_free(back);
    nb_state_dict_free(old);
    nb_state_dict_free(big);
    free(now);
    free(old_bytes);
    return 0;
#else
    (void)dir;
    return 77;
#endif
}

static void test_save_full_fs(void **state)
{
    (void)state;
    char *dir = nbt_make_dir();
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) _exit(full_fs_child(dir));
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    rmdir(dir); /* the child's files were on its tmpfs, gone with its mount namespace */
    assert_true(WIFEXITED(status));
    if (WEXITSTATUS(status) == 77) skip();
    if (WEXITSTATUS(status) != 0) fail_msg("full file system check %d failed", WEXITSTATUS(status));
}

/* ---- allocation failure ---------------------------------------------------------------- */

typedef enum op { SAVE, SAVE_TO, LOAD, LOAD_BUFFER } op;
static const char *const op_names[] = {"nb_safetensors_save", "nb_safetensors_save_to",
                                       "nb_safetensors_load", "nb_safetensors_load_buffer"};

/*
 * Fail the k-th allocation (once, or from the k-th on), for every k until one call needs
 * fewer: NB_ENOMEM naming the function, nothing leaked, the old file intact and alone.
 */
static void sweep(op o, const nb_state_dict *d, const char *path, const unsigned char *bytes,
                  size_t len, bool from_k)
{
    char msg[128];
    snprintf(msg, sizeof msg, "%s: out of memory", op_names[o]);
    const char *dir_end = strrchr(path, '/');
    char dir[300];
    snprintf(dir, sizeof dir, "%.*s", (int)(dir_end - path), path);
    long k;
    for (k = 1;; k++) {
        long live0 = nbt_alloc_live();
        if (from_k)
            nbt_fail_alloc_from(k);
        else
            nbt_fail_alloc_after(k);
        nb_error_clear();
        nb_status st = NB_OK;
        nb_state_dict *got = NULL;
        nbt_membuf m = NBT_MEMBUF;
        switch (o) {
        case SAVE:
            st = nb_safetensors_save(d, path);
            break;
        case SAVE_TO:
            st = nb_safetensors_save_to(d, nbt_mem_write, &m);
            break;
        case LOAD:
            got = nb_safetensors_load(path);
            break;
        case LOAD_BUFFER:
            got = nb_safetensors_load_buffer(bytes, len);
            break;
        }
        if (o >= LOAD) st = got ? NB_OK : nb_last_error()->code;
        bool failed = nbt_alloc_failed();
        nbt_fail_alloc_after(0);
        if (st != NB_OK) {
            if (!failed)
                fail_msg("%s failed with k = %ld: %s", op_names[o], k, nb_last_error()->message);
            assert_int_equal(st, NB_ENOMEM);
            assert_string_equal(nb_last_error()->message, msg);
            assert_int_equal(m.len, 0);
        } else if (o >= LOAD) {
            assert_dicts_equal(d, got);
        }
        nb_state_dict_free(got);
        free(m.data);
        if (o <= SAVE_TO || o == LOAD) { /* the file is the old one (or, at the end, the same) */
            size_t now_len;
            unsigned char *now = nbt_read_file(path, &now_len);
            assert_int_equal(now_len, len);
            assert_memory_equal(now, bytes, len);
            free(now);
            assert_only_file(dir, "model.safetensors");
        }
        if (nbt_alloc_live() != live0)
            fail_msg("%s, k = %ld%s: %ld blocks leaked", op_names[o], k, from_k ? " on" : "",
                     nbt_alloc_live() - live0);
        if (!failed) break;
    }
    assert_true(k > 3);
}

static void test_alloc_failures(void **state)
{
    (void)state;
    char *dir = nbt_make_dir(), path[300];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    nb_state_dict *d = small_dict(1.0f);
    nb_tensor *w = nb_zeros(NB_SHAPE(2));
    assert_int_equal(nb_state_dict_set(d, "ключ", w), NB_OK);
    nb_release(w);
    assert_int_equal(nb_state_dict_set_metadata(d, "format", "pt"), NB_OK);
    /* names and strings past the 16 bytes that jansson's string buffer starts with, which it
     * grows as it reads them (a failure there it does not report) */
    add(d, "a tensor name longer than sixteen bytes", NB_SHAPE(2), 3.0f);
    assert_int_equal(nb_state_dict_set_metadata(d, "param_groups.0.lr", "0.0100000000000000002"),
                     NB_OK);
    nbt_membuf m = save_mem(d);
    nbt_write_file(path, m.data, m.len);
    for (int from_k = 0; from_k < 2; from_k++)
        for (op o = SAVE; o <= LOAD_BUFFER; o++) sweep(o, d, path, m.data, m.len, from_k);
    free(m.data);

    /* converting loads: the chunk buffer too */
    nb_state_dict *dt = nb_safetensors_load(NB_TEST_DATA_DIR "/torch_dtypes.safetensors");
    assert_non_null(dt);
    size_t len;
    unsigned char *b = nbt_read_file(NB_TEST_DATA_DIR "/torch_dtypes.safetensors", &len);
    sweep(LOAD_BUFFER, dt, path, b, len, false);
    free(b);
    nb_state_dict_free(dt);
    nb_state_dict_free(d);
    nbt_rm_dir(dir);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, nbt_setup_counting, nbt_teardown_counting)
    const struct CMUnitTest tests[] = {
        T(test_exact_bytes),       T(test_empty_dict),
        T(test_round_trip_shapes), T(test_round_trip_metadata_and_names),
        T(test_round_trip_many),   T(test_load_many_entries),
        T(test_save_long_name),    T(test_round_trip_large),
        T(test_load_in_scope),     T(test_torch_sequential),
        T(test_torch_dtypes),      T(test_write_for_torch),
        T(test_convert_large),     T(test_bad_files),
        T(test_header_order),      T(test_corpus_in_sync),
        T(test_load_errors),       T(test_save_errors),
        T(test_save_header_limit), T(test_writer_failure_sweep),
        T(test_save_fsize_sweep),  T(test_save_full_fs),
        T(test_alloc_failures),
    };
#undef T
    return cmocka_run_group_tests_name("safetensors", tests, NULL, NULL);
}
