/* Misuse reports of the preload library: one line on stderr written with write(2), then
 * abort (ZEROPOOL_ON_ERROR=abort, the default) or carry on (report). The pool calls this
 * with its locks released or held; it must neither allocate nor take locks. */
#include "zp_interpose.h"

#include <stdlib.h>

#include "zp_fmt.h"

void zp_ip_report_misuse(void *ctx, zp_misuse_t kind, const void *addr, size_t buf_size)
{
    (void)ctx;
    int e = errno;
    char line[160];
    zp_buf_t b = ZP_BUF_INIT(line);
    zp_buf_str(&b, "zeropool: ");
    zp_buf_str(&b, zp_misuse_name(kind));
    zp_buf_str(&b, " of ");
    zp_buf_hex(&b, (uint64_t)(uintptr_t)addr);
    zp_buf_str(&b, " (");
    zp_buf_u64(&b, buf_size);
    zp_buf_str(&b, "-byte buffer)\n");
    zp_buf_flush(&b, 2);
    if (zp_ip.opts.on_error != ZP_ON_ERROR_REPORT)
        abort();
    errno = e;
}
