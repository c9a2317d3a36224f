/* Fuzz harness of core/: random sequences of get, aligned get, put, resize, writes, cycles,
 * trim and impossible requests against a small pool (4 MiB budget, 4K..1M classes, 1-2
 * shards, thread cache of 2 or none, LIFO or CLOCK-Pro, guard pages), checked after every
 * operation against a model of every live buffer's bytes (see fuzz_core.h). Only correct
 * use: any misuse report aborts, as it does by default. */
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
    fz_run(data, size, false);
    return 0;
}
