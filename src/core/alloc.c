/* The replaceable allocator, and the locks taken across fork. */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"

/*
 * The default allocator keeps a per-thread cache of freed blocks by size class, so a training
 * step that frees and reallocates the same sizes reaches malloc only while warming up. Every
 * block carries a 64-byte header that records its class. Cached blocks go back to the system
 * when their thread exits (a pthread key destructor) and at process exit. Built with
 * NB_NO_ALLOC_CACHE (sanitizer builds), every free is real, so use-after-free stays visible.
 */
#define HEADER              64
#define SMALL_MAX           1024               /* 64-byte steps up to here: classes 0..15 */
#define CACHE_MAX_BLOCK     ((size_t)64 << 20) /* then 4 steps per doubling up to 64 MiB */
#define NCLASS              (16 + 4 * 16)
#define CACHE_MAX_PER_CLASS 64
#define CACHE_MAX_BYTES     ((size_t)64 << 20)

typedef struct block_cache {
    void *head[NCLASS]; /* singly linked through the first word of each free block */
    unsigned count[NCLASS];
    size_t bytes;
} block_cache;

/* What the header in front of each block records. */
typedef struct block_header {
    int cls;     /* size class, or -1 for a block too large to cache */
    size_t size; /* the size it was allocated with */
} block_header;

static NB__TLS block_cache *cache;   /* made on the first free that can be cached */
static NB__TLS nb_alloc_stats stats; /* cached_bytes is read from the cache */
static pthread_key_t cache_key;
static pthread_once_t cache_once = PTHREAD_ONCE_INIT;
static _Atomic bool cache_key_ok; /* cleared at unload, while other threads may read it */

/* The class of a request of size bytes and its rounded size, or -1 when it is not cached. */
static int class_of(size_t size, size_t *csize)
{
    if (size <= SMALL_MAX) {
        size_t c = size ? (size + 63) / 64 : 1;
        *csize = c * 64;
        return (int)c - 1;
    }
    if (size > CACHE_MAX_BLOCK) {
        *csize = (size + 63) & ~(size_t)63;
        return -1;
    }
    unsigned p = 10; /* 2^p < size <= 2^(p+1) */
    while (((size_t)2 << p) < size) p++;
    size_t step = (size_t)1 << (p - 2);
    size_t k = (size - ((size_t)1 << p) + step - 1) / step; /* 1..4 */
    *csize = ((size_t)1 << p) + k * step;
    return 16 + (int)(p - 10) * 4 + (int)k - 1;
}

static void cache_free_all(block_cache *bc)
{
    for (int c = 0; c < NCLASS; c++) {
        while (bc->head[c]) {
            void *block = bc->head[c];
            bc->head[c] = *(void **)block;
            free((char *)block - HEADER);
        }
    }
    free(bc);
}

static void flush_on_thread_exit(void *bc)
{
    cache_free_all(bc);
    cache = NULL;
}

static void flush_on_process_exit(void)
{
    if (cache) flush_on_thread_exit(cache);
}

static void cache_init(void)
{
    atomic_store(&cache_key_ok, pthread_key_create(&cache_key, flush_on_thread_exit) == 0);
    if (atomic_load(&cache_key_ok)) atexit(flush_on_process_exit);
}

static pthread_mutex_t *fork_locks[NB__FORK_LOCKS];
static int n_fork_locks;

static void fork_prepare(void)
{
    for (int i = 0; i < n_fork_locks; i++) pthread_mutex_lock(fork_locks[i]);
}

static void fork_done(void)
{
    for (int i = n_fork_locks; i-- > 0;) pthread_mutex_unlock(fork_locks[i]);
}

void nb__lock_across_fork(pthread_mutex_t *lock)
{
    if (n_fork_locks == 0) pthread_atfork(fork_prepare, fork_done, fork_done);
    if (n_fork_locks < NB__FORK_LOCKS) fork_locks[n_fork_locks++] = lock;
}

/*
 * The library is unloaded (dlclose; at exit, after flush_on_process_exit): the key goes, so
 * that no thread still alive calls flush_on_thread_exit, gone with the library, when it exits.
 * The caches of those threads are left to the process (at most CACHE_MAX_BYTES each).
 */
__attribute__((destructor)) static void cache_fini(void)
{
    if (atomic_exchange(&cache_key_ok, false)) {
        pthread_key_delete(cache_key);
    }
}

/* This thread's cache, made (and its flush at thread exit registered) on first use. */
static block_cache *thread_cache(void)
{
    if (cache) return cache;
    pthread_once(&cache_once, cache_init);
    block_cache *bc = NULL;
    if (atomic_load(&cache_key_ok)) {
        stats.system_allocs++; /* a call to the C library, counted with the blocks' */
        bc = calloc(1, sizeof *bc);
    }
    if (bc && pthread_setspecific(cache_key, bc) != 0) {
        free(bc);
        bc = NULL;
    }
    return cache = bc;
}

/* A block from the system, with its header (the cache missed). */
static void *alloc_fresh(int c, size_t csize)
{
    stats.system_allocs++;
    char *raw = aligned_alloc(HEADER, HEADER + csize);
    if (!raw) return NULL;
    *(block_header *)(void *)raw = (block_header){c, csize};
    return raw + HEADER;
}

static inline void *alloc_impl(size_t size, size_t align)
{
    if (align > HEADER || size > SIZE_MAX - 2 * HEADER) return NULL;
    size_t csize;
    int c = class_of(size, &csize);
    block_cache *bc = cache;
    if (c >= 0 && bc && bc->head[c]) {
        void *block = bc->head[c];
        bc->head[c] = *(void **)block;
        bc->count[c]--;
        bc->bytes -= csize;
        return block;
    }
    return alloc_fresh(c, csize);
}

#ifdef NB_NO_ALLOC_CACHE
static const bool cache_enabled = false;
#else
static const bool cache_enabled = true;
#endif

/* Whether bc has room for a block of h's class and size. */
static inline bool cache_takes(const block_cache *bc, block_header h)
{
    return bc->count[h.cls] < CACHE_MAX_PER_CLASS && bc->bytes + h.size <= CACHE_MAX_BYTES;
}

static inline void cache_push(block_cache *bc, void *ptr, block_header h)
{
    *(void **)ptr = bc->head[h.cls];
    bc->head[h.cls] = ptr;
    bc->count[h.cls]++;
    bc->bytes += h.size;
}

/* A free that the thread's cache does not take at once: the cache is still to be made, is
 * full, or the block is not cacheable. Out of line, so the common path saves no registers. */
static __attribute__((noinline)) void free_slow(void *ptr, block_header h)
{
    block_cache *bc = !cache_enabled || h.cls < 0 ? NULL : thread_cache();
    if (bc && cache_takes(bc, h)) {
        cache_push(bc, ptr, h);
        return;
    }
    stats.system_frees++;
    free((char *)ptr - HEADER);
}

static inline void free_impl(void *ptr)
{
    block_header h = *(const block_header *)(const void *)((char *)ptr - HEADER);
    block_cache *bc = cache;
    if (cache_enabled && h.cls >= 0 && bc && cache_takes(bc, h)) {
        cache_push(bc, ptr, h);
        return;
    }
    free_slow(ptr, h);
}

static void *default_alloc(size_t size, size_t align, void *ctx)
{
    (void)ctx;
    return alloc_impl(size, align);
}

static void default_free(void *ptr, void *ctx)
{
    (void)ctx;
    free_impl(ptr);
}

static nb_allocator current = {default_alloc, default_free, NULL};

void nb_set_allocator(const nb_allocator *allocator)
{
    if (allocator && allocator->alloc && allocator->free)
        current = *allocator;
    else
        current = (nb_allocator){default_alloc, default_free, NULL};
}

/* The default allocator's code is inlined here rather than called through the table. */
void *nb__alloc(size_t size, size_t align)
{
    stats.allocs++;
    if (current.alloc == default_alloc) return alloc_impl(size, align);
    return current.alloc(size, align, current.ctx);
}

void nb__free(void *ptr)
{
    if (!ptr) return;
    stats.frees++;
    if (current.free == default_free)
        free_impl(ptr);
    else
        current.free(ptr, current.ctx);
}

void nb__free_uncached(void *ptr)
{
    if (!ptr) return;
    stats.frees++;
    if (current.free != default_free) {
        current.free(ptr, current.ctx);
        return;
    }
    stats.system_frees++;
    free((char *)ptr - HEADER);
}

void nb_alloc_stats_get(nb_alloc_stats *out)
{
    if (!out) return;
    *out = stats;
    out->cached_bytes = cache ? cache->bytes : 0;
}

void *nb__calloc(size_t size)
{
    void *p = nb__alloc(size, 16);
    if (p) memset(p, 0, size);
    return p;
}

bool nb__grow_inline(void **arr, size_t elem, size_t *cap, size_t need, const void *inline_buf)
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
        if (*arr != inline_buf) nb__free(*arr);
    }
    *arr = p;
    *cap = ncap;
    return true;
}

bool nb__grow(void **arr, size_t elem, size_t *cap, size_t need)
{
    return nb__grow_inline(arr, elem, cap, need, NULL);
}
