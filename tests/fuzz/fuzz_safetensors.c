/*
 * Fuzz target: nb_safetensors_load_buffer on arbitrary bytes. Whatever the input, the loader
 * must not crash, read out of bounds or leak (the sanitizers watch), and either
 * - fail with NB_EINVAL or NB_ENOMEM and one line "nb_safetensors_load_buffer: ...", or
 * - return a dict that saves, loads back equal (names, shapes, value bits, metadata, order),
 *   and saves again to the very same bytes.
 * Any other outcome aborts, which libFuzzer (or the replay main) reports.
 */
#define FUZZ_NAME "fuzz_safetensors"
#include "fuzz.h"

typedef struct membuf {
    unsigned char *data;
    size_t len, cap;
} membuf;

static int mem_write(void *ctx, const void *data, size_t size)
{
    membuf *m = ctx;
    if (m->len + size > m->cap) {
        size_t cap = (m->len + size) * 2;
        unsigned char *p = realloc(m->data, cap);
        if (!p) return 12; /* ENOMEM */
        m->data = p;
        m->cap = cap;
    }
    memcpy(m->data + m->len, data, size);
    m->len += size;
    return 0;
}

static void check_error(void)
{
    const nb_status code = nb_last_error()->code;
    CHECK(code == NB_EINVAL || code == NB_ENOMEM);
    CHECK(fuzz_one_line("nb_safetensors_load_buffer: "));
}

static void check_equal(const nb_state_dict *a, const nb_state_dict *b)
{
    CHECK(nb_state_dict_size(a) == nb_state_dict_size(b));
    for (int64_t i = 0; i < nb_state_dict_size(a); i++) {
        CHECK(!strcmp(nb_state_dict_name(a, i), nb_state_dict_name(b, i)));
        const nb_tensor *x = nb_state_dict_tensor(a, i), *y = nb_state_dict_tensor(b, i);
        CHECK(nb_tensor_ndim(x) == nb_tensor_ndim(y));
        for (int k = 0; k < nb_tensor_ndim(x); k++)
            CHECK(nb_tensor_shape(x)[k] == nb_tensor_shape(y)[k]);
        size_t bytes = (size_t)nb_tensor_numel(x) * sizeof(float);
        CHECK(!bytes || !memcmp(nb_tensor_data_const(x), nb_tensor_data_const(y), bytes));
    }
    CHECK(nb_state_dict_metadata_size(a) == nb_state_dict_metadata_size(b));
    for (int64_t i = 0; i < nb_state_dict_metadata_size(a); i++) {
        const char *k = nb_state_dict_metadata_key(a, i);
        CHECK(!strcmp(k, nb_state_dict_metadata_key(b, i)));
        CHECK(!strcmp(nb_state_dict_metadata(a, k), nb_state_dict_metadata(b, k)));
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    nb_error_clear();
    nb_state_dict *d = nb_safetensors_load_buffer(data, size);
    if (!d) {
        check_error();
        return 0;
    }
    membuf first = {0}, second = {0};
    CHECK(nb_safetensors_save_to(d, mem_write, &first) == NB_OK);
    nb_state_dict *back = nb_safetensors_load_buffer(first.data, first.len);
    CHECK(back != NULL);
    check_equal(d, back);
    CHECK(nb_safetensors_save_to(back, mem_write, &second) == NB_OK);
    CHECK(first.len == second.len && !memcmp(first.data, second.data, first.len));
    nb_state_dict_free(back);
    nb_state_dict_free(d);
    free(first.data);
    free(second.data);
    return 0;
}
