/*
 * libnabla loaded with dlopen after another library took 1 KiB of the static TLS area
 * (tests/tls_filler.c). The library's thread-locals all live there, as some of them use the
 * initial-exec model, and glibc keeps only about 1.6 KiB of that area for libraries loaded
 * later: at 1 328 bytes of thread-locals libnabla failed to load ("cannot allocate memory in
 * static TLS block"). Then an error message of every length, in the main thread and in one
 * that exits, is read back whole.
 *
 *   nabla_static_tls FILLER            the above
 *   nabla_static_tls FILLER --no-keys  the same with every pthread key taken before nabla's
 *                                      first error: messages are cut at 63 bytes, still valid
 *
 * Exit status 0 on success, 1 on failure.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <nabla/nabla.h>

#define MAX_KEYS 4096

static nb_state_dict *(*load)(const char *);
static const nb_error *(*last_error)(void);
static size_t cap; /* the longest message expected: 511, or 63 without a key */

static bool sym(void *lib, const char *name, void *out)
{
    void *p = dlsym(lib, name);
    if (!p) fprintf(stderr, "static_tls: %s\n", dlerror());
    memcpy(out, &p, sizeof p);
    return p != NULL;
}

/* A failed load of a path of n characters: the message names the path, cut to the cap. */
static bool check_message(size_t n)
{
    char path[1024];
    for (size_t i = 0; i < n; i++) path[i] = i % 50 == 0 ? '/' : 'x'; /* no such directory */
    path[n] = '\0';
    if (load(path)) return false;
    const nb_error *e = last_error();
    const char *want = "nb_safetensors_load: cannot open '/xx";
    size_t len = strlen(e->message);
    size_t full = strlen("nb_safetensors_load: cannot open '': No such file or directory") + n;
    size_t expect = full < cap ? full : cap;
    if (e->code != NB_EIO || strncmp(e->message, want, strlen(want)) != 0 || len != expect) {
        fprintf(stderr, "static_tls: path of %zu: %zu bytes, expected %zu: %s\n", n, len, expect,
                e->message);
        return false;
    }
    return true;
}

static bool check_messages(void)
{
    static const size_t lengths[] = {10, 30, 100, 600};
    for (size_t i = 0; i < sizeof lengths / sizeof lengths[0]; i++)
        if (!check_message(lengths[i])) return false;
    return true;
}

static void *worker(void *ok)
{
    *(bool *)ok = check_messages();
    return NULL; /* the thread's message buffer is freed here */
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: nabla_static_tls FILLER [--no-keys]\n");
        return 1;
    }
    void *filler = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    char *(*fill)(void);
    if (!filler || !sym(filler, "nb_test_tls_fill", &fill)) {
        fprintf(stderr, "static_tls: %s: %s\n", argv[1],
                filler ? "no nb_test_tls_fill" : dlerror());
        return 1;
    }
    fill();
    void *lib = dlopen(NB_LIBNABLA, RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        fprintf(stderr, "static_tls: %s\n", dlerror());
        return 1;
    }
    if (!sym(lib, "nb_safetensors_load", &load) || !sym(lib, "nb_last_error", &last_error))
        return 1;
    static pthread_key_t keys[MAX_KEYS];
    int n_keys = 0;
    cap = 511;
    if (argc > 2 && strcmp(argv[2], "--no-keys") == 0) {
        while (n_keys < MAX_KEYS && pthread_key_create(&keys[n_keys], NULL) == 0) n_keys++;
        cap = 63;
    }
    bool ok = check_messages(), in_thread = false;
    pthread_t t;
    if (pthread_create(&t, NULL, worker, &in_thread) != 0) return 1;
    pthread_join(t, NULL);
    for (int i = 0; i < n_keys; i++) pthread_key_delete(keys[i]);
    printf("static_tls: libnabla loaded after 1 KiB of static TLS; messages up to %zu bytes %s\n",
           cap, ok && in_thread ? "whole" : "WRONG");
    return ok && in_thread ? 0 : 1;
}
