/* A program with known allocator activity, for test_stats.py. Prints its pid first.
 *   work     10 cycles of a 1 MiB buffer, 200 small blocks of 100 bytes, one double free of a
 *            2 MiB buffer (run with ZEROPOOL_ON_ERROR=report), then malloc_info to stdout
 *   threads  4 threads that each free 1000 small blocks and exit before the statistics
 *   fork     forks a child that execs this program ("child") and one that just exits, waits
 *   child    3 cycles of a 1 MiB buffer
 *   mstats   malloc_stats() (the table on stderr) */
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void cycles(int n)
{
    for (int i = 0; i < n; i++) {
        char *p = malloc((size_t)1 << 20);
        memset(p, i + 1, (size_t)1 << 20);
        free(p);
    }
}

static void *small_frees(void *arg)
{
    (void)arg;
    for (int i = 0; i < 1000; i++) {
        char *p = malloc(100);
        p[0] = 1;
        free(p);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "work";
    printf("pid %d\n", (int)getpid());
    fflush(stdout);
    if (strcmp(mode, "work") == 0) {
        cycles(10);
        for (int i = 0; i < 200; i++) {
            char *p = malloc(100);
            p[0] = 1;
            free(p);
        }
        char *d = malloc((size_t)2 << 20);
        free(d);
        free(d);
        malloc_info(0, stdout);
    } else if (strcmp(mode, "threads") == 0) {
        pthread_t t[4];
        for (int i = 0; i < 4; i++)
            pthread_create(&t[i], NULL, small_frees, NULL);
        for (int i = 0; i < 4; i++)
            pthread_join(t[i], NULL);
    } else if (strcmp(mode, "fork") == 0) {
        cycles(2);
        pid_t a = fork();
        if (a == 0) {
            execl(argv[0], argv[0], "child", (char *)NULL);
            _exit(127);
        }
        pid_t b = fork();
        if (b == 0) {
            cycles(1);
            exit(0); /* runs the destructors: a file of its own */
        }
        printf("children %d %d\n", (int)a, (int)b);
        int st;
        waitpid(a, &st, 0);
        waitpid(b, &st, 0);
    } else if (strcmp(mode, "child") == 0) {
        cycles(3);
    } else if (strcmp(mode, "mstats") == 0) {
        cycles(2);
        malloc_stats();
    } else {
        return 2;
    }
    return 0;
}
