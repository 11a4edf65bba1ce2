/* The thread-local last error and the warning handler. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"

#define MESSAGE_MAX 512
#define SPARE_MAX   64 /* the room of a message whose thread has no buffer (see message_room) */

/*
 * The thread's last error: its code and message pointer, and the text, in a buffer of
 * MESSAGE_MAX bytes taken from the C library at the thread's first error and freed when the
 * thread exits (it outlives any change of allocator, as the block cache's own table does).
 * The text stays out of TLS to keep the library's thread-locals small (core/internal.h).
 */
static NB__TLS nb_error last = {NB_OK, ""};
static NB__TLS char *thread_text;
static NB__TLS char spare[SPARE_MAX];
/* recorded and not yet returned by nb_last_error(): pending */
static NB__TLS bool error_unread;

static pthread_key_t text_key;
static pthread_once_t text_once = PTHREAD_ONCE_INIT;
static _Atomic bool text_key_ok; /* cleared at unload */

static nb_warning_fn warning_fn;
static void *warning_ctx;

/*
 * A message cut at its room's size - 1 bytes: drop the start of a UTF-8 character the cut left
 * without its last bytes, so that the message stays valid UTF-8 (a name read from a file may
 * be anything).
 */
static void cut_whole_character(char *msg)
{
    size_t len = strlen(msg), start = len;
    while (start > 0 && len - start < 3 && ((unsigned char)msg[start - 1] & 0xC0) == 0x80)
        start--; /* continuation bytes */
    if (start == 0) return;
    const unsigned char lead = (unsigned char)msg[start - 1];
    const size_t need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
    if (len - (start - 1) < need) msg[start - 1] = '\0';
}

/* The thread exits: its message, if it is the last error, moves to spare (cut to fit), so
 * that a later key destructor still reads a message; a later error makes another buffer. */
static void free_text(void *buf)
{
    if (last.message == buf) {
        snprintf(spare, SPARE_MAX, "%s", (const char *)buf);
        if (strlen(buf) >= SPARE_MAX) cut_whole_character(spare);
        last.message = spare;
    }
    if (thread_text == buf) thread_text = NULL;
    free(buf);
}

static void make_text_key(void)
{
    atomic_store(&text_key_ok, pthread_key_create(&text_key, free_text) == 0);
}

/* Unloaded: the key goes, so that no thread calls free_text, gone with the library, when it
 * exits (the buffers of the threads still alive are left to the process). */
__attribute__((destructor)) static void text_fini(void)
{
    if (atomic_exchange(&text_key_ok, false)) pthread_key_delete(text_key);
}

/* Where this thread's message goes, and its size: the thread's buffer, made on first use, or
 * spare when it cannot be made (no memory, no key), which cuts the message at SPARE_MAX - 1. */
static char *message_room(size_t *size)
{
    if (!thread_text) {
        pthread_once(&text_once, make_text_key);
        char *buf = atomic_load(&text_key_ok) ? malloc(MESSAGE_MAX) : NULL;
        if (buf && pthread_setspecific(text_key, buf) != 0) {
            free(buf);
            buf = NULL;
        }
        thread_text = buf;
    }
    *size = thread_text ? MESSAGE_MAX : SPARE_MAX;
    return thread_text ? thread_text : spare;
}

const nb_error *nb_last_error(void)
{
    if (!last.message) last.message = "";
    error_unread = false; /* the user has seen it: it no longer explains a later NULL */
    return &last;
}

void nb_error_clear(void)
{
    last.code = NB_OK;
    error_unread = false;
    last.message = "";
}

const char *nb_status_name(nb_status status)
{
    switch (status) {
    case NB_OK:
        return "NB_OK";
    case NB_EINVAL:
        return "NB_EINVAL";
    case NB_ESHAPE:
        return "NB_ESHAPE";
    case NB_ENOMEM:
        return "NB_ENOMEM";
    case NB_EIO:
        return "NB_EIO";
    case NB_ESTATE:
        return "NB_ESTATE";
    case NB_ERANGE:
        return "NB_ERANGE";
    case NB_ECHECK:
        return "NB_ECHECK";
    }
    return "NB_E?";
}

nb_status nb__error(nb_status code, const char *fn, const char *fmt, ...)
{
    size_t size;
    char *buf = message_room(&size);
    int n = snprintf(buf, size, "%s: ", fn);
    if (n < 0 || (size_t)n >= size) n = 0;
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(buf + n, size - (size_t)n, fmt, ap);
    va_end(ap);
    if (m >= 0 && (size_t)m >= size - (size_t)n) cut_whole_character(buf);
    /* one line, always: no line break nor other control character (a tensor name read from
     * a file may hold a carriage return or a terminal escape) */
    for (char *p = buf; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f) *p = ' ';
    last.code = code;
    last.message = buf;
    error_unread = true;
    return code;
}

nb_status nb__oom(const char *fn)
{
    return nb__error(NB_ENOMEM, fn, "out of memory");
}

nb_status nb__null(const char *fn, const char *arg)
{
    if (error_unread) return last.code;
    return nb__error(NB_EINVAL, fn, "argument '%s' is NULL", arg);
}

nb_status nb__pending(void)
{
    return error_unread ? last.code : NB_OK;
}

nb_status nb__last_code(void)
{
    return last.code;
}

void nb_set_warning_handler(nb_warning_fn fn, void *ctx)
{
    warning_fn = fn;
    warning_ctx = ctx;
}

void nb__warn(const char *fmt, ...)
{
    char text[MESSAGE_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    if (warning_fn)
        warning_fn(text, warning_ctx);
    else
        fprintf(stderr, "%s\n", text);
}

const char *nb__shape_str(char *buf, int ndim, const int64_t *dims)
{
    size_t n = 0;
    buf[n++] = '[';
    for (int i = 0; i < ndim && i < NB_MAX_DIMS; i++) {
        int w = snprintf(buf + n, NB__SHAPE_STR - n, i ? ", %lld" : "%lld", (long long)dims[i]);
        if (w < 0 || (size_t)w >= NB__SHAPE_STR - n) break;
        n += (size_t)w;
    }
    buf[n++] = ']';
    buf[n] = '\0';
    return buf;
}
