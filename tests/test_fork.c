/*
 * fork while other threads draw: a draw holds the default generator's lock for a whole fill,
 * and the child of fork has only the forking thread. nabla takes its locks across fork, so the
 * child's first draw does not wait forever for a thread it does not have.
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"

static atomic_bool stop;

/* Draws large tensors from the default generator until stop: its lock is held most of the
 * time, and free between draws for a moment (so that a fork, which waits for it, comes in
 * also where threads take turns, as under valgrind). */
static void *drawer(void *arg)
{
    (void)arg;
    while (!atomic_load(&stop)) {
        nb_release(nb_randn(NB_SHAPE(1 << 17)));
        nanosleep(&(struct timespec){0, 100000}, NULL);
    }
    return NULL;
}

static void test_fork_while_drawing(void **state)
{
    (void)state;
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, drawer, NULL), 0);
    int hung = 0, failed = 0;
    for (int i = 0; i < 12; i++) {
        nanosleep(&(struct timespec){0, 2000000}, NULL);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) { /* the child: a draw and a product, then out */
            alarm(5);
            nb_tensor *x = nb_randn(NB_SHAPE(64, 64));
            nb_tensor *y = x ? nb_matmul(x, x) : NULL;
            _exit(y ? 0 : 1);
        }
        int status = 0;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        if (WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM)
            hung++;
        else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
            failed++;
    }
    atomic_store(&stop, true);
    pthread_join(th, NULL);
    if (hung || failed) fail_msg("of 12 children, %d hung and %d failed", hung, failed);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_fork_while_drawing)};
    return cmocka_run_group_tests_name("fork", tests, NULL, NULL);
}
