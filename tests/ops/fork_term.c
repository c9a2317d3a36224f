/* A SIGTERM that reaches a freshly forked child while the fork handlers still run (the way a
 * service manager stops a forking server, or a pool of workers is torn down) must end the
 * child, not hang it. With statistics on, the library writes its last statistics from the
 * SIGTERM handler; in a child whose allocator locks are still being re-created after fork, that
 * write used to wait forever on a lock (CPython's test_multiprocessing_main_handling hung so).
 * The program forks ROUNDS children, each allocating a pooled buffer (so the pool and its locks
 * exist in the parent), sends each child SIGTERM at once, and fails if a child is not gone
 * within 15 s. Usage: fork_term [ROUNDS] (default 300) */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    int rounds = argc > 1 ? atoi(argv[1]) : 300;
    char *keep = malloc(1 << 20); /* the pool exists before the first fork */
    memset(keep, 1, 1 << 20);
    int hung = 0, by_term = 0, done = 0;
    for (int i = 0; i < rounds && !hung; i++, done++) {
        pid_t pid = fork();
        if (pid < 0) {
            perror("fork");
            return 2;
        }
        if (pid == 0) {
            char *p = malloc(256 << 10);
            memset(p, 2, 256 << 10);
            free(p);
            _exit(0);
        }
        /* At once, and now and then after a short spin: the signal lands at different points
         * of the child's start. */
        for (volatile int k = 0; k < (i % 8) * 500; k++) {
        }
        kill(pid, SIGTERM);
        double t0 = now_s();
        int st = 0;
        for (;;) {
            pid_t r = waitpid(pid, &st, WNOHANG);
            if (r == pid)
                break;
            if (now_s() - t0 > 15) {
                fprintf(stderr, "fork_term: child %d of round %d still there 15 s after SIGTERM\n",
                        (int)pid, i);
                kill(pid, SIGKILL);
                waitpid(pid, &st, 0);
                hung = 1;
                break;
            }
            usleep(200);
        }
        by_term += WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM;
    }
    free(keep);
    printf("fork_term: %d rounds, %d children ended by SIGTERM, %s\n", done, by_term,
           hung ? "one hung" : "none hung");
    return hung;
}
