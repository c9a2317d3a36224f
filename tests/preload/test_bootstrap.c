/* Start-up under the preload, as a plain program (exit status 0 = pass, 77 = skipped part):
 * a constructor that allocates large before main, the first large requests racing from
 * several threads at once (run with ZEROPOOL_THRESHOLD=1M, so that libstdc++'s 72 KiB
 * start-up buffer does not create the pool first), and an exec'ed child that inherits
 * LD_PRELOAD. With the argument "exec-child" it is that child. */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test_util.h"

#define BIG ((size_t)2 << 20)

static int from_zeropool(void)
{
    Dl_info info;
    return dladdr(dlsym(RTLD_DEFAULT, "malloc"), &info) && strstr(info.dli_fname, "libzeropool");
}

static unsigned char *ctor_block;
static int ctor_zero;

__attribute__((constructor(101))) static void early(void)
{
    ctor_block = malloc(BIG);
    ctor_zero = ctor_block != NULL && test_all_zero(ctor_block, BIG);
    if (ctor_block)
        memset(ctor_block, 0x6b, BIG);
}

static pthread_barrier_t gate;

static void *racer(void *arg)
{
    (void)arg;
    pthread_barrier_wait(&gate);
    void *p[3];
    for (int i = 0; i < 3; i++) {
        p[i] = malloc(BIG + (size_t)i * 65536);
        if (p[i] == NULL || !test_all_zero(p[i], BIG))
            return (void *)1;
        memset(p[i], 0x11, BIG);
    }
    for (int i = 0; i < 3; i++)
        free(p[i]);
    return NULL;
}

static int exec_child(void)
{
    CHECK(from_zeropool(), "the exec'ed child does not run with libzeropool");
    unsigned char *p = malloc(BIG);
    CHECK(p && test_all_zero(p, BIG), "child: large block not zero");
    free(p);
    return test_failures ? 1 : 0;
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "exec-child") == 0)
        return exec_child();

    CHECK(from_zeropool(), "malloc does not come from libzeropool (LD_PRELOAD=%s)",
          getenv("LD_PRELOAD") ? getenv("LD_PRELOAD") : "");
    CHECK(ctor_block != NULL && ctor_zero, "constructor(101): large block missing or not zero");
    for (size_t i = 0; ctor_block && i < BIG; i++)
        if (ctor_block[i] != 0x6b) {
            CHECK(0, "constructor block changed at %zu", i);
            break;
        }
    free(ctor_block);

    enum { N = 8 };
    pthread_t t[N];
    pthread_barrier_init(&gate, NULL, N);
    for (int i = 0; i < N; i++)
        pthread_create(&t[i], NULL, racer, NULL);
    for (int i = 0; i < N; i++) {
        void *ret;
        pthread_join(t[i], &ret);
        CHECK(ret == NULL, "racing thread %d saw a bad block", i);
    }

    pid_t pid = fork();
    if (pid == 0) {
        char *args[] = {"/proc/self/exe", "exec-child", NULL};
        execv("/proc/self/exe", args);
        _exit(127);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "exec'ed child: status %#x", status);

    if (test_failures == 0)
        printf("bootstrap: all checks passed\n");
    return test_failures ? 1 : 0;
}
