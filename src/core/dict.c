/*
 * State dicts: an ordered list of (name, tensor) pairs plus (key, value) string metadata, the
 * one container that modules, optimizers and checkpoint files exchange. Lookups are linear:
 * models have hundreds of tensors, not millions, and insertion order is what files keep.
 */
#include <string.h>

#include "core/internal.h"

typedef struct dict_entry {
    char *name;
    nb_tensor *tensor; /* strong */
} dict_entry;

typedef struct meta_entry {
    char *key, *value;
} meta_entry;

struct nb_state_dict {
    dict_entry *items;
    size_t count, cap;
    meta_entry *meta;
    size_t meta_count, meta_cap;
};

static char *copy_str(const char *s)
{
    size_t n = strlen(s) + 1;
    char *c = nb__alloc(n, 1);
    if (c) memcpy(c, s, n);
    return c;
}

nb_state_dict *nb_state_dict_new(void)
{
    nb_state_dict *d = nb__calloc(sizeof *d);
    if (!d) nb__oom("nb_state_dict_new");
    return d;
}

void nb_state_dict_free(nb_state_dict *d)
{
    if (!d) return;
    for (size_t i = 0; i < d->count; i++) {
        nb__free(d->items[i].name);
        nb__release(d->items[i].tensor);
    }
    for (size_t i = 0; i < d->meta_count; i++) {
        nb__free(d->meta[i].key);
        nb__free(d->meta[i].value);
    }
    nb__free(d->items);
    nb__free(d->meta);
    nb__free(d);
}

static int64_t find(const nb_state_dict *d, const char *name)
{
    for (size_t i = 0; i < d->count; i++)
        if (!strcmp(d->items[i].name, name)) return (int64_t)i;
    return -1;
}

nb_status nb_state_dict_set(nb_state_dict *d, const char *name, nb_tensor *t)
{
    static const char fn[] = "nb_state_dict_set";
    if (!t) return nb__null(fn, "t");
    if (!d) return nb__error(NB_EINVAL, fn, "argument 'd' is NULL");
    if (!name) return nb__error(NB_EINVAL, fn, "argument 'name' is NULL");
    if (!name[0]) return nb__error(NB_EINVAL, fn, "a tensor name cannot be empty");
    int64_t i = find(d, name);
    if (i >= 0) { /* replace in place: the entry keeps its position */
        nb_tensor *old = d->items[i].tensor;
        d->items[i].tensor = nb_retain(t);
        nb__release(old);
        return NB_OK;
    }
    return nb__state_dict_append(d, name, t);
}

nb_status nb__state_dict_append(nb_state_dict *d, const char *name, nb_tensor *t)
{
    static const char fn[] = "nb_state_dict_set";
    char *copy = copy_str(name);
    if (!copy || !nb__grow((void **)&d->items, sizeof *d->items, &d->cap, d->count + 1)) {
        nb__free(copy);
        return nb__oom(fn);
    }
    d->items[d->count++] = (dict_entry){copy, nb_retain(t)};
    return NB_OK;
}

nb_tensor *nb_state_dict_get(const nb_state_dict *d, const char *name)
{
    if (!d || !name) return NULL;
    int64_t i = find(d, name);
    return i >= 0 ? d->items[i].tensor : NULL;
}

nb_status nb_state_dict_remove(nb_state_dict *d, const char *name)
{
    static const char fn[] = "nb_state_dict_remove";
    if (!d) return nb__error(NB_EINVAL, fn, "argument 'd' is NULL");
    if (!name) return nb__error(NB_EINVAL, fn, "argument 'name' is NULL");
    int64_t i = find(d, name);
    if (i < 0) return nb__error(NB_EINVAL, fn, "no tensor named \"%s\"", name);
    nb__free(d->items[i].name);
    nb__release(d->items[i].tensor);
    memmove(&d->items[i], &d->items[i + 1], (d->count - (size_t)i - 1) * sizeof *d->items);
    d->count--;
    return NB_OK;
}

int64_t nb_state_dict_size(const nb_state_dict *d)
{
    return d ? (int64_t)d->count : 0;
}

const char *nb_state_dict_name(const nb_state_dict *d, int64_t i)
{
    return d && i >= 0 && (size_t)i < d->count ? d->items[i].name : NULL;
}

nb_tensor *nb_state_dict_tensor(const nb_state_dict *d, int64_t i)
{
    return d && i >= 0 && (size_t)i < d->count ? d->items[i].tensor : NULL;
}

/* ---- metadata -------------------------------------------------------------------------- */

nb_status nb_state_dict_set_metadata(nb_state_dict *d, const char *key, const char *value)
{
    static const char fn[] = "nb_state_dict_set_metadata";
    if (!d) return nb__error(NB_EINVAL, fn, "argument 'd' is NULL");
    if (!key || !value)
        return nb__error(NB_EINVAL, fn, "argument '%s' is NULL", key ? "value" : "key");
    for (size_t i = 0; i < d->meta_count; i++) {
        if (!strcmp(d->meta[i].key, key)) {
            char *v = copy_str(value);
            if (!v) return nb__oom(fn);
            nb__free(d->meta[i].value);
            d->meta[i].value = v;
            return NB_OK;
        }
    }
    return nb__state_dict_append_metadata(d, key, value);
}

nb_status nb__state_dict_append_metadata(nb_state_dict *d, const char *key, const char *value)
{
    static const char fn[] = "nb_state_dict_set_metadata";
    char *v = copy_str(value);
    if (!v) return nb__oom(fn);
    char *k = copy_str(key);
    if (!k || !nb__grow((void **)&d->meta, sizeof *d->meta, &d->meta_cap, d->meta_count + 1)) {
        nb__free(k);
        nb__free(v);
        return nb__oom(fn);
    }
    d->meta[d->meta_count++] = (meta_entry){k, v};
    return NB_OK;
}

const char *nb_state_dict_metadata(const nb_state_dict *d, const char *key)
{
    if (!d || !key) return NULL;
    for (size_t i = 0; i < d->meta_count; i++)
        if (!strcmp(d->meta[i].key, key)) return d->meta[i].value;
    return NULL;
}

int64_t nb_state_dict_metadata_size(const nb_state_dict *d)
{
    return d ? (int64_t)d->meta_count : 0;
}

const char *nb_state_dict_metadata_key(const nb_state_dict *d, int64_t i)
{
    return d && i >= 0 && (size_t)i < d->meta_count ? d->meta[i].key : NULL;
}

const char *nb__state_dict_metadata_value(const nb_state_dict *d, int64_t i)
{
    return d && i >= 0 && (size_t)i < d->meta_count ? d->meta[i].value : NULL;
}
