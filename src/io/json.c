/*
 * jansson allocates with the process-wide functions of json_set_alloc_funcs. nabla installs
 * its own pair once and keeps jansson's previous pair: a thread inside a nb__json_begin()/
 * nb__json_end() bracket allocates with nb__alloc, every other call is passed on unchanged.
 * A block always returns to the allocator that made it, because nabla frees every jansson
 * value it makes before its bracket ends, and nothing else in the process allocates inside
 * one. Blocks carry no header: jansson's free cannot know the size, and nb__free needs none.
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "io/internal.h"

static json_malloc_t prev_malloc;
static json_free_t prev_free;
static pthread_once_t install_once = PTHREAD_ONCE_INIT;
static _Thread_local int depth; /* > 0 inside a bracket */
static _Thread_local bool failed;

static void *json_alloc(size_t size)
{
    if (depth == 0) return prev_malloc(size);
    void *p = nb__alloc(size ? size : 1, 16);
    if (!p) failed = true;
    return p;
}

static void json_release(void *p)
{
    if (depth == 0)
        prev_free(p);
    else
        nb__free(p);
}

static void install(void)
{
    json_get_alloc_funcs(&prev_malloc, &prev_free);
    json_set_alloc_funcs(json_alloc, json_release);
}

/* Unloading nabla must not leave jansson calling into unmapped code. */
#if defined(__GNUC__)
__attribute__((destructor))
#endif
static void
uninstall(void)
{
    json_malloc_t m;
    json_free_t f;
    json_get_alloc_funcs(&m, &f);
    if (m == json_alloc) json_set_alloc_funcs(prev_malloc, prev_free);
}

void nb__json_begin(void)
{
    pthread_once(&install_once, install);
    if (depth++ == 0) failed = false;
}

void nb__json_end(void)
{
    depth--;
}

bool nb__json_failed(void)
{
    return failed;
}
