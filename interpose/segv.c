/* The SIGSEGV reporter: a write past a pooled buffer lands in its PROT_NONE guard page; this
 * handler says so ("zeropool: overflow into guard page at ...", with a backtrace) and then
 * behaves exactly as if it were not there. Installed once, at pool creation, with sigaction;
 * it remembers the disposition it replaced and hands every fault on to it:
 *   - a function (SA_SIGINFO or not): called directly with the same arguments and its mask;
 *   - SIG_DFL or SIG_IGN: SIGSEGV is reset to SIG_DFL and the handler returns, so the faulting
 *     instruction runs again and the kernel's default action ends the process (core dump and
 *     all); a SIGSEGV sent with kill() is raised again instead.
 * A handler the program installs later simply replaces ours (sigaction replaces): we never
 * reinstall ourselves, and if that handler chains to ours, ours chains on as above. Faults
 * outside the pool cost one O(1) address test before they are passed on. */
#include "zp_interpose.h"

#include <signal.h>
#include <unistd.h>

static struct sigaction ip_prev; /* what we replaced; written before ours can run */
static _Atomic int ip_installed;

static void ip_chain(int sig, siginfo_t *si, void *uc)
{
    struct sigaction prev = ip_prev;
    if (prev.sa_flags & SA_SIGINFO) {
        if (prev.sa_sigaction != NULL) {
            sigset_t old;
            pthread_sigmask(SIG_BLOCK, &prev.sa_mask, &old);
            if (prev.sa_flags & SA_RESETHAND)
                ip_prev.sa_handler = SIG_DFL;
            prev.sa_sigaction(sig, si, uc);
            pthread_sigmask(SIG_SETMASK, &old, NULL);
            return;
        }
    } else if (prev.sa_handler != SIG_DFL && prev.sa_handler != SIG_IGN) {
        sigset_t old;
        pthread_sigmask(SIG_BLOCK, &prev.sa_mask, &old);
        if (prev.sa_flags & SA_RESETHAND)
            ip_prev.sa_handler = SIG_DFL;
        prev.sa_handler(sig);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        return;
    }
    if (si->si_code <= 0 && prev.sa_handler == SIG_IGN)
        return; /* sent by kill(), and ignored before we came */
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    sigaction(sig, &dfl, NULL);
    if (si->si_code <= 0)
        (void)raise(sig); /* blocked until we return, then the default action */
}

static void ip_segv(int sig, siginfo_t *si, void *uc)
{
    int e = errno;
    zp_pool_t *pool = atomic_load_explicit(&zp_ip.pool, memory_order_acquire);
    if (pool != NULL && si->si_code > 0 && zp_owns(pool, si->si_addr))
        zp_ip_report_fault(pool, si->si_addr, uc);
    ip_chain(sig, si, uc);
    errno = e;
}

void zp_ip_segv_install(void)
{
    int s = 0;
    if (!atomic_compare_exchange_strong(&ip_installed, &s, 1))
        return;
    struct sigaction ours, before;
    memset(&ours, 0, sizeof ours);
    ours.sa_sigaction = ip_segv;
    ours.sa_flags = SA_SIGINFO | SA_ONSTACK; /* on the alternate stack when there is one */
    sigemptyset(&ours.sa_mask);
    if (sigaction(SIGSEGV, NULL, &ip_prev) != 0)
        return;
    if (sigaction(SIGSEGV, &ours, &before) != 0)
        return;
    /* A handler installed by another thread in between is the one to chain to. */
    if (before.sa_handler != ip_prev.sa_handler)
        ip_prev = before;
}
