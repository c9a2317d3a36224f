/* Programs that notice anything the allocator does besides allocating: threads, descriptors,
 * output, signal handlers. For test_invisible.sh; each mode exits 0 when it noticed nothing.
 *   threads             allocates (small, large, realloc), then checks /proc/self/task holds
 *                       exactly one thread and that SIGTERM, SIGINT have no handler; prints
 *                       "threads N handlers H"
 *   forklog LOG         a daemon: closes every descriptor >= 3 (close_range), opens its log
 *                       (descriptor 3), forks a worker that logs; both log 10 lines each
 *   data FILE CLOSER END [MS]  closes descriptors >= 3 (CLOSER: range or loop), opens FILE,
 *                       writes 20 lines with allocations (and MS milliseconds, default 0) in
 *                       between, and ends by END: exit (exit(0)),
 *                       term (SIGTERM to itself, default action) or fork (a child writes the
 *                       last 10 lines and exits; the parent waits)
 *   fd2 FILE            closes 0..2, opens /dev/null twice and FILE (descriptor 2), writes
 *                       10 lines and exits
 *   userns              unshare(CLONE_NEWUSER)
 * Only libc: the probe must not depend on anything the preload would change. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static unsigned pause_ms;

static void churn(void)
{
    if (pause_ms != 0)
        usleep(pause_ms * 1000u);
    for (int i = 0; i < 50; i++) {
        char *small = malloc(48), *big = malloc((size_t)1 << 20);
        if (small == NULL || big == NULL)
            exit(3);
        memset(small, 'p', 48);
        memset(big, 'P', 4096);
        big = realloc(big, (size_t)2 << 20);
        free(small);
        free(big);
    }
}

static int count_threads(void)
{
    DIR *d = opendir("/proc/self/task");
    if (d == NULL)
        return -1;
    int n = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

static int count_handlers(void)
{
    int n = 0;
    static const int sigs[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGALRM, SIGCHLD, SIGUSR1};
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
        struct sigaction sa;
        /* SIG_IGN is inherited, never ours: a job a non-interactive shell puts in the
         * background (CI's runner may be one) starts with SIGINT and SIGQUIT ignored. */
        if (sigaction(sigs[i], NULL, &sa) == 0 && sa.sa_handler != SIG_DFL &&
            sa.sa_handler != SIG_IGN)
            n++;
    }
    return n;
}

static void close_from_3(const char *how)
{
    if (strcmp(how, "loop") == 0) {
        for (int fd = 3; fd < 1024; fd++)
            (void)close(fd);
    } else if (syscall(SYS_close_range, 3u, ~0u, 0u) != 0) {
        perror("close_range");
        exit(4);
    }
}

/* One line to fd, as a program logs: write(2), checked. */
static void say(int fd, const char *who, int i)
{
    char line[64];
    int n = snprintf(line, sizeof line, "%s line %d\n", who, i);
    if (write(fd, line, (size_t)n) != n) {
        fprintf(stderr, "probe: %s line %d: %s\n", who, i, strerror(errno));
        exit(5);
    }
}

static int open_log(const char *path, int want)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_TRUNC, 0644);
    if (fd != want) {
        fprintf(stderr, "probe: %s opened as %d, expected %d\n", path, fd, want);
        exit(4);
    }
    return fd;
}

static int reap(pid_t pid)
{
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR)
            return 6;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 7;
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "threads";
    if (strcmp(mode, "threads") == 0) {
        churn();
        int t = count_threads(), h = count_handlers();
        printf("threads %d handlers %d\n", t, h);
        return t == 1 && h == 0 ? 0 : 1;
    }
    if (strcmp(mode, "forklog") == 0 && argc > 2) {
        close_from_3("range");
        int log = open_log(argv[2], 3);
        churn();
        pid_t pid = fork();
        if (pid < 0)
            return 4;
        const char *who = pid == 0 ? "worker" : "master";
        for (int i = 0; i < 10; i++) {
            churn();
            say(log, who, i);
        }
        if (pid == 0)
            exit(0);
        return reap(pid);
    }
    if (strcmp(mode, "data") == 0 && argc > 4) {
        close_from_3(argv[3]);
        int fd = open_log(argv[2], 3);
        const char *end = argv[4];
        pause_ms = argc > 5 ? (unsigned)atoi(argv[5]) : 0;
        for (int i = 0; i < 10; i++) {
            churn();
            say(fd, "data", i);
        }
        if (strcmp(end, "fork") == 0) {
            pid_t pid = fork();
            if (pid == 0) {
                for (int i = 10; i < 20; i++) {
                    churn();
                    say(fd, "data", i);
                }
                exit(0);
            }
            return reap(pid);
        }
        for (int i = 10; i < 20; i++) {
            churn();
            say(fd, "data", i);
        }
        if (strcmp(end, "term") == 0)
            kill(getpid(), SIGTERM);
        return 0;
    }
    if (strcmp(mode, "fd2") == 0 && argc > 2) {
        close(0);
        close(1);
        close(2);
        if (open("/dev/null", O_RDONLY) != 0 || open("/dev/null", O_WRONLY) != 1)
            return 4;
        int fd = open_log(argv[2], 2);
        for (int i = 0; i < 10; i++) {
            churn();
            say(fd, "data", i);
        }
        return 0;
    }
    if (strcmp(mode, "userns") == 0) {
        churn();
        if (unshare(CLONE_NEWUSER) != 0) {
            perror("probe: unshare(CLONE_NEWUSER)");
            return 1;
        }
        return 0;
    }
    fprintf(stderr, "probe: unknown mode %s\n", mode);
    return 2;
}
