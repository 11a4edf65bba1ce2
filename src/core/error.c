/* The thread-local last error and the warning handler. */
#include <stdio.h>
#include <string.h>

#include "core/internal.h"

#define MESSAGE_MAX 512

typedef struct error_state {
    nb_error pub;
    char text[MESSAGE_MAX];
} error_state;

static _Thread_local error_state tls_error = {{NB_OK, ""}, ""};
/* recorded and not yet returned by nb_last_error(): pending. Apart from tls_error so the
 * hot paths read it without a call into the TLS machinery */
static NB__TLS bool error_unread;

static nb_warning_fn warning_fn;
static void *warning_ctx;

const nb_error *nb_last_error(void)
{
    if (!tls_error.pub.message) tls_error.pub.message = "";
    error_unread = false; /* the user has seen it: it no longer explains a later NULL */
    return &tls_error.pub;
}

void nb_error_clear(void)
{
    tls_error.pub.code = NB_OK;
    error_unread = false;
    tls_error.text[0] = '\0';
    tls_error.pub.message = "";
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

/*
 * A message cut at MESSAGE_MAX - 1 bytes: drop the start of a UTF-8 character the cut left
 * without its last bytes, so that the message stays valid UTF-8 (a name read from a file may
 * be anything).
 */
static void cut_whole_character(char *text)
{
    size_t len = strlen(text), start = len;
    while (start > 0 && len - start < 3 && ((unsigned char)text[start - 1] & 0xC0) == 0x80)
        start--; /* continuation bytes */
    if (start == 0) return;
    const unsigned char lead = (unsigned char)text[start - 1];
    const size_t need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
    if (len - (start - 1) < need) text[start - 1] = '\0';
}

nb_status nb__error(nb_status code, const char *fn, const char *fmt, ...)
{
    int n = snprintf(tls_error.text, MESSAGE_MAX, "%s: ", fn);
    if (n < 0 || n >= MESSAGE_MAX) n = 0;
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(tls_error.text + n, (size_t)(MESSAGE_MAX - n), fmt, ap);
    va_end(ap);
    if (m >= MESSAGE_MAX - n) cut_whole_character(tls_error.text);
    /* one line, always: no line break nor other control character (a tensor name read from
     * a file may hold a carriage return or a terminal escape) */
    for (char *p = tls_error.text; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f) *p = ' ';
    tls_error.pub.code = code;
    tls_error.pub.message = tls_error.text;
    error_unread = true;
    return code;
}

nb_status nb__oom(const char *fn)
{
    return nb__error(NB_ENOMEM, fn, "out of memory");
}

nb_status nb__null(const char *fn, const char *arg)
{
    if (error_unread) return tls_error.pub.code;
    return nb__error(NB_EINVAL, fn, "argument '%s' is NULL", arg);
}

nb_status nb__pending(void)
{
    return error_unread ? tls_error.pub.code : NB_OK;
}

nb_status nb__last_code(void)
{
    return tls_error.pub.code;
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
