/* The SIGSEGV reporter: a write past a pooled buffer lands in its PROT_NONE guard page; this
 * hook says so ("zeropool: overflow into guard page at ...", with a backtrace) and then the
 * fault goes on exactly as if we were not there. The signal handling itself (install once,
 * chain to the disposition we replaced) is the platform layer's zp_os_fault_hook. Faults
 * outside the pool cost one O(1) address test before they are passed on. */
#include "zp_interpose.h"

#include "platform.h"

static void ip_fault(void *addr, void *uc)
{
    zp_pool_t *pool = atomic_load_explicit(&zp_ip.pool, memory_order_acquire);
    if (pool != NULL && zp_owns(pool, addr))
        zp_ip_report_fault(pool, addr, uc);
}

void zp_ip_segv_install(void)
{
    (void)zp_os_fault_hook(ip_fault);
}
