/*
 * dlclose of libnabla while a thread that freed nabla memory is still alive, then that thread
 * exits: the block cache's thread-exit destructor must not outlive the library (it was a jump
 * into unmapped code). The library is loaded with dlopen from NB_LIBNABLA, so this program
 * does not link it; exit status 0 when the thread exits cleanly, 77 (skipped) when the library
 * stays loaded after dlclose, so the case cannot arise.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <nabla/nabla.h>

static nb_tensor *(*zeros)(nb_shape);
static void (*release)(nb_tensor *);
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t moved = PTHREAD_COND_INITIALIZER;
static int phase; /* 1: the thread freed a tensor; 2: the library is closed */

static void *worker(void *arg)
{
    (void)arg;
    release(zeros(NB_SHAPE(100))); /* its block goes to this thread's cache */
    pthread_mutex_lock(&lock);
    phase = 1;
    pthread_cond_broadcast(&moved);
    while (phase != 2) pthread_cond_wait(&moved, &lock);
    pthread_mutex_unlock(&lock);
    return NULL; /* the thread's key destructors run here */
}

int main(void)
{
    void *lib = dlopen(NB_LIBNABLA, RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        fprintf(stderr, "unload: %s\n", dlerror());
        return 1;
    }
    void *z = dlsym(lib, "nb_zeros"), *r = dlsym(lib, "nb_release");
    if (!z || !r) {
        fprintf(stderr, "unload: %s\n", dlerror());
        return 1;
    }
    memcpy(&zeros, &z, sizeof z);
    memcpy(&release, &r, sizeof r);
    pthread_t t;
    if (pthread_create(&t, NULL, worker, NULL) != 0) return 1;
    pthread_mutex_lock(&lock);
    while (phase != 1) pthread_cond_wait(&moved, &lock);
    pthread_mutex_unlock(&lock);
    if (dlclose(lib) != 0) return 1;
    bool unloaded = !dlopen(NB_LIBNABLA, RTLD_NOW | RTLD_NOLOAD);
    pthread_mutex_lock(&lock);
    phase = 2;
    pthread_cond_broadcast(&moved);
    pthread_mutex_unlock(&lock);
    pthread_join(t, NULL);
    if (!unloaded) {
        printf("unload: libnabla stays loaded after dlclose; nothing to check\n");
        return 77;
    }
    printf("unload: the thread exited after dlclose\n");
    return 0;
}
