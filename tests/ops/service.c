/* A stand-in for a service, for test_ops.sh: does some allocator work, says it is ready by
 * creating the file named in $READY, then waits for a signal like a daemon does.
 *   serve          1 MiB buffer cycles and small frees, then waits
 *   drop           the same, then setuid(nobody) and chdir("/"), then waits (a daemon that
 *                  starts as root and drops privileges)
 *   fork-drop      forks a worker at once that setuid()s to nobody and works, like an nginx
 *                  worker; the parent waits for it; both wait for SIGTERM
 *   hold MIB       keeps MIB of memory of its own (mmap, never freed, like a slab cache) and
 *                  frees little through malloc, then waits
 * No signal handlers of its own: SIGTERM and SIGINT keep their default action. */
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

static void work(void)
{
    for (int i = 0; i < 8; i++) {
        char *p = malloc((size_t)1 << 20);
        if (p == NULL)
            exit(3);
        memset(p, 'S', (size_t)1 << 20);
        free(p);
    }
    for (int i = 0; i < 100; i++) {
        char *q = malloc(200);
        if (q == NULL)
            exit(3);
        memset(q, 's', 200);
        free(q);
    }
}

static void ready(const char *what)
{
    const char *path = getenv("READY");
    if (path == NULL)
        return;
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.%d", path, (int)getpid());
    FILE *f = fopen(tmp, "w");
    if (f == NULL || fprintf(f, "%s %d\n", what, (int)getpid()) < 0 || fclose(f) != 0)
        exit(4);
    if (rename(tmp, path) != 0)
        exit(4);
}

static void drop_to_nobody(void)
{
    struct passwd *pw = getpwnam("nobody");
    if (pw == NULL || setgroups(0, NULL) != 0 || setgid(pw->pw_gid) != 0 ||
        setuid(pw->pw_uid) != 0) {
        perror("service: cannot become nobody");
        exit(5);
    }
    if (chdir("/") != 0)
        exit(5);
}

static void wait_for_signal(void)
{
    for (;;)
        pause();
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "serve";
    if (strcmp(mode, "serve") == 0) {
        work();
        ready("serve");
        wait_for_signal();
    } else if (strcmp(mode, "drop") == 0) {
        work();
        drop_to_nobody();
        work();
        ready("drop");
        wait_for_signal();
    } else if (strcmp(mode, "fork-drop") == 0) {
        pid_t w = fork();
        if (w < 0)
            return 6;
        if (w == 0) {
            drop_to_nobody();
            work();
            ready("worker");
            wait_for_signal();
        }
        work();
        int st;
        if (waitpid(w, &st, 0) != w)
            return 6;
        /* The worker died by the signal too: so do we, as a master would after cleanup. */
        if (WIFSIGNALED(st))
            raise(WTERMSIG(st));
        return 7;
    } else if (strcmp(mode, "hold") == 0 && argc > 2) {
        size_t n = (size_t)atol(argv[2]) << 20;
        char *own = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (own == MAP_FAILED)
            return 8;
        memset(own, 'h', n);
        char *q = malloc(100);
        free(q);
        ready("hold");
        wait_for_signal();
    }
    fprintf(stderr, "usage: service serve|drop|fork-drop|hold MIB\n");
    return 2;
}
