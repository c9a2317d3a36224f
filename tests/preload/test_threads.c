/* Threads and processes under the preload: fork while other threads allocate (parent and
 * child both keep allocating), many short-lived threads, and thread exit where other TLS
 * destructors free (and allocate) large buffers after the pool's own thread-exit handling. */
#include <criterion/criterion.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test_util.h"

/* A burst of large and small allocations; returns false if a large one was not zero. */
static bool churn(unsigned seed, int rounds)
{
    void *keep[16] = {0};
    for (int r = 0; r < rounds; r++) {
        seed = seed * 1103515245u + 12345u;
        size_t n = (seed >> 8) % 5 == 0 ? ((seed >> 12) % (4u << 20)) + 65536 : (seed >> 12) % 3000;
        unsigned slot = (seed >> 20) % 16;
        free(keep[slot]);
        unsigned char *p = malloc(n);
        if (p == NULL)
            return false;
        if (n >= test_threshold() && !test_all_zero(p, n)) /* pool buffers are zero */
            return false;
        memset(p, (int)(seed & 0xff) | 1, n);
        keep[slot] = p;
    }
    for (int i = 0; i < 16; i++)
        free(keep[i]);
    return true;
}

static atomic_bool stop;

static void *churner(void *arg)
{
    unsigned seed = (unsigned)(uintptr_t)arg;
    while (!atomic_load(&stop))
        if (!churn(seed++, 50))
            abort();
    return NULL;
}

Test(threads, fork_while_threads_allocate, .timeout = 240) /* 40 forks with 4 threads churning: ~70 s on 2 busy cores */
{
    pthread_t t[4];
    atomic_store(&stop, false);
    for (uintptr_t i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, churner, (void *)(i + 1));
    for (int k = 0; k < 40; k++) {
        pid_t pid = fork();
        cr_assert_neq(pid, -1);
        if (pid == 0) {
            alarm(20); /* a deadlock in the child kills it: the status says so */
            pthread_t ct;
            pthread_create(&ct, NULL, churner, (void *)77);
            bool ok = churn((unsigned)k, 300);
            atomic_store(&stop, true);
            pthread_join(ct, NULL);
            exit(ok ? 0 : 3); /* exit, not _exit: destructors run too */
        }
        cr_assert(churn((unsigned)k + 1000, 100));
        int status = 0;
        cr_assert_eq(waitpid(pid, &status, 0), pid);
        cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child %d: status %#x", k, status);
    }
    atomic_store(&stop, true);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
}

Test(threads, fork_then_allocate_at_once)
{
    for (int k = 0; k < 20; k++) {
        pid_t pid = fork();
        if (pid == 0) {
            unsigned char *p = malloc((size_t)2 << 20);
            bool ok = p != NULL && test_all_zero(p, (size_t)2 << 20);
            free(p);
            free(malloc(10));
            _exit(ok ? 0 : 1);
        }
        int status = 0;
        waitpid(pid, &status, 0);
        cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
}

static void *large_worker(void *arg)
{
    size_t n = (size_t)(uintptr_t)arg;
    void *p[4];
    for (int i = 0; i < 4; i++) {
        p[i] = malloc(n + (size_t)i * 4096);
        if (p[i] == NULL || (n >= test_threshold() && !test_all_zero(p[i], n)))
            return (void *)1;
        memset(p[i], 0xa5, n);
    }
    for (int i = 0; i < 4; i++)
        free(p[i]);
    return NULL;
}

Test(threads, many_threads_large_buffers, .timeout = 120)
{
    for (int round = 0; round < 3; round++) {
        pthread_t t[64];
        for (uintptr_t i = 0; i < 64; i++)
            cr_assert_eq(pthread_create(&t[i], NULL, large_worker, (void *)((i % 8 + 1) << 18)), 0);
        for (int i = 0; i < 64; i++) {
            void *ret;
            pthread_join(t[i], &ret);
            cr_assert_null(ret, "thread %d saw a non-zero buffer", i);
        }
    }
    /* Buffers cached by the exited threads went back to the pool: this takes them again. */
    cr_assert(churn(99, 2000));
}

/* TLS destructors of the program run in key order, some before and some after whatever the
 * pool registered for thread exit; each frees a large buffer and allocates again. */
static pthread_key_t keys[3];

static void key_dtor(void *v)
{
    free(v);
    void *again = malloc((size_t)1 << 20);
    if (again == NULL || !test_all_zero(again, (size_t)1 << 20))
        abort();
    free(again);
    free(malloc(100));
}

static void *tls_worker(void *arg)
{
    (void)arg;
    for (int i = 0; i < 3; i++) {
        unsigned char *p = malloc((size_t)(i + 1) << 20);
        memset(p, 0x3c, (size_t)(i + 1) << 20);
        pthread_setspecific(keys[i], p);
    }
    free(malloc((size_t)3 << 20)); /* fills the thread cache */
    return NULL;
}

Test(threads, tls_destructors_free_large_buffers, .timeout = 120)
{
    pthread_key_create(&keys[0], key_dtor);
    free(malloc((size_t)1 << 20)); /* the pool and its thread-exit key exist from here */
    pthread_key_create(&keys[1], key_dtor);
    pthread_key_create(&keys[2], key_dtor);
    for (int round = 0; round < 20; round++) {
        pthread_t t[4];
        for (int i = 0; i < 4; i++)
            pthread_create(&t[i], NULL, tls_worker, NULL);
        for (int i = 0; i < 4; i++)
            pthread_join(t[i], NULL);
    }
    cr_assert(churn(5, 500));
}
