/*
 * The entry points of nabla/extend.h: core's error and allocation helpers, exported for
 * libraries built on nabla (a shared libnabla hides the nb__ helpers themselves).
 */
#include <stdarg.h>
#include <stdio.h>

#include "core/internal.h"
#include "core/rng.h"
#include "nabla/extend.h"

nb_status nb_error_set(nb_status code, const char *fn, const char *fmt, ...)
{
    static const char self[] = "nb_error_set";
    if (!fn) return nb__error(NB_EINVAL, self, "argument 'fn' is NULL");
    if (!fmt) return nb__error(NB_EINVAL, self, "argument 'fmt' is NULL");
    if (code >= 0)
        return nb__error(NB_EINVAL, self, "code must be an error (negative), got %d", (int)code);
    /* the core message holds 512 bytes with fn: a longer cause is cut there anyway */
    char cause[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cause, sizeof cause, fmt, ap);
    va_end(ap);
    return nb__error(code, fn, "%s", cause);
}

nb_status nb_error_null(const char *fn, const char *arg)
{
    static const char self[] = "nb_error_null";
    if (!fn) return nb__error(NB_EINVAL, self, "argument 'fn' is NULL");
    if (!arg) return nb__error(NB_EINVAL, self, "argument 'arg' is NULL");
    return nb__null(fn, arg);
}

nb_status nb_error_pending(void)
{
    return nb__pending();
}

void *nb_alloc(size_t size, size_t align)
{
    if (align == 0) align = 16;
    if (size == 0 || align > NB__ALIGN || (align & (align - 1)) != 0) return NULL;
    return nb__alloc(size, align);
}

void nb_free(void *ptr)
{
    nb__free(ptr);
}

nb_status nb_randperm_into(int64_t n, nb_generator *gen, int64_t *out)
{
    static const char fn[] = "nb_randperm_into";
    if (!gen && nb__pending() != NB_OK) return nb__pending(); /* a failed generator */
    if (n < 0) return nb__error(NB_EINVAL, fn, "n must be non-negative, got %lld", (long long)n);
    if (!out && n > 0) return nb__error(NB_EINVAL, fn, "argument 'out' is NULL");
    nb__randperm(gen, n, out);
    return NB_OK;
}
