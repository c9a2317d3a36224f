/* The pre-fork server pattern: WORKERS worker processes each run BURSTS bursts of BUFS
 * buffers of 1-8 MiB (malloc, write every page, free; one at a time), then idle IDLE seconds,
 * then make one more pool operation and report their resident memory, then malloc_trim(0) and
 * report it again. The parent prints one line per worker and exits 0 when no worker was killed
 * (a memory cgroup's OOM killer) and every worker's resident memory after the idle time is at
 * most RSS_MAX MiB (0: not checked). Settings from PREFORK_<NAME> variables. */
#include "test_util.h"

#include <malloc.h>
#include <signal.h>
#include <stdint.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MiB ((size_t)1 << 20)

static size_t setting(const char *name, size_t dflt)
{
    char var[64];
    snprintf(var, sizeof var, "PREFORK_%s", name);
    return test_env_size(var, dflt);
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) != 0)
        ;
}

static int worker(unsigned id, int out)
{
    size_t bursts = setting("BURSTS", 4), bufs = setting("BUFS", 16);
    uint64_t seed = 0x9E3779B97F4A7C15ull ^ (id * 0x2545F4914F6CDD1Dull);
    for (size_t b = 0; b < bursts; b++) {
        for (size_t i = 0; i < bufs; i++) {
            seed ^= seed << 13, seed ^= seed >> 7, seed ^= seed << 17;
            size_t n = MiB + (size_t)(seed % (7 * MiB + 1));
            unsigned char *p = malloc(n);
            if (p == NULL)
                return 2;
            for (size_t k = 0; k < n; k += 4096)
                p[k] = (unsigned char)(k >> 12 | 1);
            free(p);
        }
        sleep_ms(50); /* the workers' bursts overlap */
    }
    sleep_ms((unsigned)setting("IDLE", 3) * 1000);
    /* The next pool operation after the idle time. */
    free(malloc(100 * 1024));
    size_t idle = test_status_bytes("VmRSS");
    malloc_trim(0);
    size_t trimmed = test_status_bytes("VmRSS");
    char line[128];
    int len = snprintf(line, sizeof line, "%u %zu %zu\n", id, idle >> 10, trimmed >> 10);
    return write(out, line, (size_t)len) == len ? 0 : 3;
}

int main(void)
{
    unsigned workers = (unsigned)setting("WORKERS", 8);
    size_t rss_max = setting("RSS_MAX", 0);
    int fd[2];
    if (pipe(fd) != 0)
        return 1;
    pid_t pid[64];
    fflush(NULL);
    for (unsigned w = 0; w < workers && w < 64; w++) {
        pid[w] = fork();
        if (pid[w] == 0) {
            close(fd[0]);
            _exit(worker(w, fd[1]));
        }
    }
    close(fd[1]);
    unsigned killed = 0, failed = 0;
    for (unsigned w = 0; w < workers; w++) {
        int st;
        waitpid(pid[w], &st, 0);
        if (WIFSIGNALED(st)) {
            printf("worker %u killed by signal %d\n", w, WTERMSIG(st));
            killed++;
        } else if (WEXITSTATUS(st) != 0) {
            printf("worker %u failed (exit %d)\n", w, WEXITSTATUS(st));
            failed++;
        }
    }
    char buf[4096];
    ssize_t n = read(fd[0], buf, sizeof buf - 1);
    buf[n > 0 ? n : 0] = '\0';
    unsigned id;
    size_t idle_kib, trim_kib;
    for (char *l = buf; sscanf(l, "%u %zu %zu", &id, &idle_kib, &trim_kib) == 3;) {
        printf("worker %u: resident after the idle time %zu KiB, after malloc_trim %zu KiB\n",
               id, idle_kib, trim_kib);
        CHECK(rss_max == 0 || idle_kib << 10 <= rss_max,
              "worker %u holds %zu KiB after the idle time (at most %zu)", id, idle_kib,
              rss_max >> 10);
        CHECK(rss_max == 0 || trim_kib << 10 <= rss_max,
              "worker %u holds %zu KiB after malloc_trim (at most %zu)", id, trim_kib,
              rss_max >> 10);
        l = strchr(l, '\n');
        if (l == NULL)
            break;
        l++;
    }
    printf("%u of %u workers killed\n", killed, workers);
    CHECK(killed == 0, "%u of %u workers killed", killed, workers);
    CHECK(failed == 0, "%u workers failed", failed);
    return test_failures ? 1 : 0;
}
