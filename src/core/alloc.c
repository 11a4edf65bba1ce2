/* The replaceable allocator and the thread setting. */
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"

static void *default_alloc(size_t size, size_t align, void *ctx)
{
    (void)ctx;
    if (align < sizeof(void *)) align = sizeof(void *);
    /* aligned_alloc wants a size that is a multiple of the alignment */
    size_t rounded = (size + align - 1) & ~(align - 1);
    if (rounded < size) return NULL;
    return aligned_alloc(align, rounded ? rounded : align);
}

static void default_free(void *ptr, void *ctx)
{
    (void)ctx;
    free(ptr);
}

static nb_allocator current = {default_alloc, default_free, NULL};

void nb_set_allocator(const nb_allocator *allocator)
{
    if (allocator && allocator->alloc && allocator->free)
        current = *allocator;
    else
        current = (nb_allocator){default_alloc, default_free, NULL};
}

void *nb__alloc(size_t size, size_t align)
{
    return current.alloc(size, align, current.ctx);
}

void nb__free(void *ptr)
{
    if (ptr) current.free(ptr, current.ctx);
}

void *nb__calloc(size_t size)
{
    void *p = nb__alloc(size, 16);
    if (p) memset(p, 0, size);
    return p;
}

bool nb__grow(void **arr, size_t elem, size_t *cap, size_t need)
{
    if (need <= *cap) return true;
    size_t ncap = *cap ? *cap : 8;
    while (ncap < need) {
        if (ncap > SIZE_MAX / 2 / elem) return false;
        ncap *= 2;
    }
    void *p = nb__alloc(ncap * elem, 16);
    if (!p) return false;
    if (*arr) {
        memcpy(p, *arr, *cap * elem);
        nb__free(*arr);
    }
    *arr = p;
    *cap = ncap;
    return true;
}
