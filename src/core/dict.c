/*
 * State dicts: an ordered list of (name, tensor) pairs plus (key, value) string metadata, the
 * one container that modules, optimizers and checkpoint files exchange. Insertion order is what
 * files keep, so the entries are arrays; a hash index over each array (open addressing with
 * linear probing, slots holding entry + 1) makes a lookup by name take constant time, so that
 * building or reading a dict of millions of entries by hand is linear. A removal moves the later
 * entries up and rebuilds the index in place, as it takes linear time already.
 */
#include <string.h>

#include "core/internal.h"

/* The index over an array of entries whose first member is their name. */
typedef struct name_index {
    size_t *slots; /* cap slots, each 0 (empty) or an entry's position + 1 */
    size_t cap;    /* 0 or a power of two of at least twice the entries */
    uint64_t seed; /* from the slots' address: names crafted to collide need to know it */
} name_index;

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
    name_index items_ix;
    meta_entry *meta;
    size_t meta_count, meta_cap;
    name_index meta_ix;
};

static size_t hash_name(uint64_t seed, const char *s)
{
    uint64_t h = 14695981039346656037u ^ seed; /* FNV-1a, then a mix into the low bits */
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211u;
    h = (h ^ (h >> 29)) * 0xbf58476d1ce4e5b9u;
    return (size_t)(h ^ (h >> 32));
}

/* The name of entry i of an array whose entries, stride bytes each, begin with a char *. */
static const char *name_at(const void *entries, size_t stride, size_t i)
{
    const char *name;
    memcpy(&name, (const char *)entries + i * stride, sizeof name);
    return name;
}

static void index_put(name_index *ix, const char *name, size_t i)
{
    size_t m = ix->cap - 1, s = hash_name(ix->seed, name) & m;
    while (ix->slots[s]) s = (s + 1) & m;
    ix->slots[s] = i + 1;
}

/* The position of the entry named name, or -1. */
static int64_t index_find(const name_index *ix, const void *entries, size_t stride,
                          const char *name)
{
    if (!ix->cap) return -1;
    size_t m = ix->cap - 1;
    for (size_t s = hash_name(ix->seed, name) & m; ix->slots[s]; s = (s + 1) & m)
        if (!strcmp(name_at(entries, stride, ix->slots[s] - 1), name))
            return (int64_t)ix->slots[s] - 1;
    return -1;
}

/* Refill the index with the count entries (its capacity unchanged, so nothing can fail). */
static void index_rebuild(name_index *ix, const void *entries, size_t stride, size_t count)
{
    if (!ix->cap) return;
    memset(ix->slots, 0, ix->cap * sizeof *ix->slots);
    for (size_t i = 0; i < count; i++) index_put(ix, name_at(entries, stride, i), i);
}

/* Room in the index for need entries: false (nothing changed) when memory runs out. */
static bool index_reserve(name_index *ix, const void *entries, size_t stride, size_t count,
                          size_t need)
{
    if (ix->cap / 2 >= need) return true;
    size_t cap = ix->cap ? ix->cap : 16;
    while (cap / 2 < need) {
        if (cap > SIZE_MAX / 2 / sizeof *ix->slots) return false;
        cap *= 2;
    }
    size_t *slots = nb__calloc(cap * sizeof *slots);
    if (!slots) return false;
    nb__free(ix->slots);
    ix->slots = slots;
    ix->cap = cap;
    ix->seed = (uint64_t)(uintptr_t)slots * 0x9e3779b97f4a7c15u;
    index_rebuild(ix, entries, stride, count);
    return true;
}

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
    nb__free(d->items_ix.slots);
    nb__free(d->meta);
    nb__free(d->meta_ix.slots);
    nb__free(d);
}

static int64_t find(const nb_state_dict *d, const char *name)
{
    return index_find(&d->items_ix, d->items, sizeof *d->items, name);
}

static int64_t find_meta(const nb_state_dict *d, const char *key)
{
    return index_find(&d->meta_ix, d->meta, sizeof *d->meta, key);
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
    if (!copy || !nb__grow((void **)&d->items, sizeof *d->items, &d->cap, d->count + 1) ||
        !index_reserve(&d->items_ix, d->items, sizeof *d->items, d->count, d->count + 1)) {
        nb__free(copy);
        return nb__oom(fn);
    }
    index_put(&d->items_ix, copy, d->count);
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
    index_rebuild(&d->items_ix, d->items, sizeof *d->items, d->count);
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
    int64_t i = find_meta(d, key);
    if (i >= 0) {
        char *v = copy_str(value);
        if (!v) return nb__oom(fn);
        nb__free(d->meta[i].value);
        d->meta[i].value = v;
        return NB_OK;
    }
    return nb__state_dict_append_metadata(d, key, value);
}

nb_status nb__state_dict_append_metadata(nb_state_dict *d, const char *key, const char *value)
{
    static const char fn[] = "nb_state_dict_set_metadata";
    char *v = copy_str(value);
    if (!v) return nb__oom(fn);
    char *k = copy_str(key);
    if (!k || !nb__grow((void **)&d->meta, sizeof *d->meta, &d->meta_cap, d->meta_count + 1) ||
        !index_reserve(&d->meta_ix, d->meta, sizeof *d->meta, d->meta_count, d->meta_count + 1)) {
        nb__free(k);
        nb__free(v);
        return nb__oom(fn);
    }
    index_put(&d->meta_ix, k, d->meta_count);
    d->meta[d->meta_count++] = (meta_entry){k, v};
    return NB_OK;
}

const char *nb_state_dict_metadata(const nb_state_dict *d, const char *key)
{
    if (!d || !key) return NULL;
    int64_t i = find_meta(d, key);
    return i >= 0 ? d->meta[i].value : NULL;
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
