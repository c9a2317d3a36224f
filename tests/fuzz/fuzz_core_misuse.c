/* Fuzz harness of core/ misuse detection: the operations of fuzz_core_ops.c plus frees of
 * stale, interior and wild pointers, overflows into the checked slack and writes to freed
 * buffers (with verify-on-alloc), under a misuse handler that records instead of aborting.
 * Each misuse must be reported once, with the right kind and address, and leave the pool
 * consistent: the model's checks keep running after it (see fuzz_core.h). */
#include "fuzz_core.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fz_quiet_init();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_run(data, size, true);
    return 0;
}
