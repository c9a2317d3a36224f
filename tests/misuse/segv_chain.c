/* zeropool's SIGSEGV reporter must never get in the program's way. Modes:
 *   after    the program installs its handler after the pool exists: its handler gets its own
 *            fault (a PROT_NONE page it mapped, fixed up and resumed) and the guard-page fault
 *            too (sigaction replaced ours); exits 42 from its handler, no zeropool report
 *   before   the handler is installed before the pool: ours chains to it for the program's own
 *            fault (resumed); a guard-page fault is reported, then the handler runs: exit 42
 *   plain    as before, with a non-SA_SIGINFO handler; exits 0 after its own fault
 *   default  no handler: its own fault kills it with SIGSEGV, no zeropool report
 * before and plain exit 8 if the pool existed before main (run them with ZEROPOOL_THRESHOLD=1M). */
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "misuse.h"

static char *page;
static size_t page_size;
static volatile sig_atomic_t hits;

static void fix_info(int sig, siginfo_t *si, void *uc)
{
    (void)sig;
    (void)uc;
    if ((char *)si->si_addr >= page && (char *)si->si_addr < page + page_size) {
        hits++;
        mprotect(page, page_size, PROT_READ | PROT_WRITE);
        return;
    }
    static const char msg[] = "segv_chain: program handler called for a fault not its own\n";
    write(2, msg, sizeof msg - 1);
    _exit(42);
}

static void fix_plain(int sig)
{
    (void)sig;
    hits++;
    mprotect(page, page_size, PROT_READ | PROT_WRITE);
}

static void install(int plain)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sigemptyset(&sa.sa_mask);
    if (plain) {
        sa.sa_handler = fix_plain;
    } else {
        sa.sa_sigaction = fix_info;
        sa.sa_flags = SA_SIGINFO;
    }
    sigaction(SIGSEGV, &sa, NULL);
}

MISUSE_FN void misuse_own_fault_here(void)
{
    ((volatile char *)page)[10] = 'A';
}

MISUSE_FN void misuse_guard_write_here(char *p, size_t n)
{
    ((volatile char *)p)[n] = 'A';
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "after";
    page_size = (size_t)sysconf(_SC_PAGESIZE);
    page = mmap(NULL, page_size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (page == MAP_FAILED)
        return 5;
    int before = strcmp(mode, "before") == 0, plain = strcmp(mode, "plain") == 0;
    if (before || plain)
        install(plain);
    char *big = misuse_alloc_here((size_t)1 << 20); /* creates the pool: ours is installed */
    if (before || plain) {
        /* Run with ZEROPOOL_THRESHOLD=1M: smaller requests at start-up (libstdc++'s 71 KiB
         * emergency pool) must not create the pool before this program's handler exists. */
        struct sigaction now;
        sigaction(SIGSEGV, NULL, &now);
        if (now.sa_handler == fix_plain || now.sa_sigaction == fix_info)
            return 8;
    }
    if (strcmp(mode, "after") == 0)
        install(0);
    misuse_own_fault_here();
    if (hits != 1 && strcmp(mode, "default") != 0)
        return 6;
    if (plain) {
        puts("segv_chain: resumed");
        return 0;
    }
    misuse_guard_write_here(big, (size_t)1 << 20);
    return 7;
}
