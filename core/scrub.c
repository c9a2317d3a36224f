/* Scrubbing: make every byte a program could have written zero before anyone else can reach
 * the buffer, at a cost that follows the pages dirtied rather than the bytes requested.
 *
 *   zp_scrub ─┬─ buffer known fully resident ── explicit_bzero of the usable bytes
 *             ├─ otherwise ── mincore, explicit_bzero of the resident runs only
 *             │               (untouched pages are already zero: never fault one in to scrub)
 *             └─ every 2^probe_shift puts of a big buffer ── MADV_DONTNEED instead, so the next
 *                put's mincore sees only what that use wrote; dense users back the probe off.
 *                A fully resident (probably dense) buffer drops only a rotating eighth: if that
 *                eighth comes back untouched the next put drops the whole buffer, so a dense
 *                user refaults an eighth per probe while a sparse one is found within two.
 */
#include "internal.h"
#include "platform.h"
#include "zp_fmt.h"

#include <string.h>

#define ZP_PROBE_MIN ((size_t)256 << 10) /* below this a memset is cheaper than any probe */
#define ZP_PROBE_SHIFT_MIN 3 /* probe as often as every 8 puts */
#define ZP_PROBE_SHIFT_MAX 12
#define ZP_VEC 4096 /* pages per mincore call: 16 MiB */

bool zp_drop_zeroes = true;

bool zp_is_zero(const void *p, size_t n)
{
    const unsigned char *c = p;
    while (n && ((uintptr_t)c & 7)) {
        if (*c++)
            return false;
        n--;
    }
    const uint64_t *w = (const uint64_t *)(const void *)c;
    uint64_t acc = 0;
    for (; n >= 64; n -= 64, w += 8)
        acc |= w[0] | w[1] | w[2] | w[3] | w[4] | w[5] | w[6] | w[7];
    if (acc)
        return false;
    c = (const unsigned char *)w;
    while (n--)
        if (*c++)
            return false;
    return true;
}

/* Zero the resident pages of [from, from+len). Returns the number of resident pages and adds
 * the bytes zeroed to *zeroed; *all says whether every page was resident. */
static size_t zp_scrub_resident(char *from, size_t len, size_t *zeroed, bool *all)
{
    size_t page = zp_os_page;
    char *first = (char *)((uintptr_t)from & ~(uintptr_t)(page - 1));
    char *end = from + len;
    size_t npages = (size_t)(end - first + (ptrdiff_t)page - 1) / page;
    unsigned char vec[ZP_VEC];
    size_t resident = 0;
    *all = true;
    for (size_t done = 0; done < npages; done += ZP_VEC) {
        size_t n = npages - done < ZP_VEC ? npages - done : ZP_VEC;
        char *base = first + done * page;
        if (!zp_os_resident(base, n * page, vec))
            memset(vec, 1, n); /* cannot tell: treat as resident, scrub it all */
        for (size_t i = 0; i < n;) {
            if (!(vec[i] & 1)) {
                *all = false;
                i++;
                continue;
            }
            size_t j = i;
            while (j < n && (vec[j] & 1))
                j++;
            char *a = base + i * page, *b = base + j * page;
            if (a < from)
                a = from;
            if (b > end)
                b = end;
            explicit_bzero(a, (size_t)(b - a));
            *zeroed += (size_t)(b - a);
            resident += j - i;
            i = j;
        }
    }
    return resident;
}

void zp_scrub(zp_pool_t *pool, zp_slot_t *s, char *from, size_t len, zp_tstats_t *st)
{
    (void)pool;
    if (!len)
        return;
    size_t page = zp_os_page;
    if (!s->probe_shift)
        s->probe_shift = ZP_PROBE_SHIFT_MIN;
    bool probe_ok = len >= ZP_PROBE_MIN && zp_drop_zeroes && !(s->flags & ZP_SF_PINNED);
    if (probe_ok && ++s->puts >= (1u << s->probe_shift)) {
        /* Density probe: let the kernel zero it; the next put learns what that use wrote. */
        s->puts = 0;
        bool sample = (s->flags & ZP_SF_RESIDENT) != 0;
        char *lo = from, *hi = from + len;
        if (sample) {
            s->sample = (uint8_t)((s->sample + 1) & 7);
            lo = from + s->sample * (len / 8);
            hi = lo + len / 8;
        }
        char *a = (char *)(((uintptr_t)lo + page - 1) & ~(uintptr_t)(page - 1));
        char *b = (char *)((uintptr_t)hi & ~(uintptr_t)(page - 1));
        if (b > a && zp_os_drop(a, (size_t)(b - a))) {
            /* The rest is zeroed by stores. Count as dropped what was resident at the last
             * scrub: pages that were never there cost the kernel nothing. */
            explicit_bzero(from, (size_t)(a - from));
            explicit_bzero(b, (size_t)(from + len - b));
            size_t was = sample ? (size_t)(b - a) : (size_t)s->resident * page;
            ZP_STAT_ADD(st, bytes_dropped, (uint64_t)(was < (size_t)(b - a) ? was : (size_t)(b - a)));
            ZP_STAT_ADD(st, bytes_scrubbed, (uint64_t)(len - (size_t)(b - a)));
            s->flags = (uint16_t)((s->flags & ~(ZP_SF_RESIDENT | ZP_SF_SAMPLED)) | ZP_SF_PROBED |
                                  (sample ? ZP_SF_SAMPLED : 0));
            return;
        }
    }
    if (s->flags & ZP_SF_RESIDENT) {
        s->resident = (uint32_t)((len + page - 1) / page);
        explicit_bzero(from, len);
        ZP_STAT_ADD(st, bytes_scrubbed, len);
        return;
    }
    size_t zeroed = 0;
    bool all;
    size_t resident = zp_scrub_resident(from, len, &zeroed, &all);
    ZP_STAT_ADD(st, bytes_scrubbed, zeroed);
    s->resident = (uint32_t)resident;
    if (all)
        s->flags |= ZP_SF_RESIDENT;
    if ((s->flags & ZP_SF_PROBED) && (s->flags & ZP_SF_SAMPLED)) {
        /* Pages outside the sample stayed resident: what is missing is the sample's unwritten
         * part. A mostly unwritten sample means a sparse user: drop everything next put. */
        size_t npages = (len + page - 1) / page, part = (len / 8) / page;
        size_t in_sample = resident + part > npages ? resident + part - npages : 0;
        s->flags &= (uint16_t)~(ZP_SF_PROBED | ZP_SF_SAMPLED);
        if (in_sample * 4 >= part) {
            if (s->probe_shift < ZP_PROBE_SHIFT_MAX)
                s->probe_shift++;
        } else {
            s->probe_shift = ZP_PROBE_SHIFT_MIN;
            s->puts = (uint16_t)((1u << s->probe_shift) - 1);
        }
    } else if (s->flags & ZP_SF_PROBED) {
        /* What one use wrote, measured: dense buffers probe less often, sparse ones more. */
        size_t npages = (len + page - 1) / page;
        s->flags &= (uint16_t)~ZP_SF_PROBED;
        s->touched = (uint32_t)resident;
        if (resident * 4 >= npages) {
            if (s->probe_shift < ZP_PROBE_SHIFT_MAX)
                s->probe_shift++;
        } else if (s->probe_shift > ZP_PROBE_SHIFT_MIN) {
            s->probe_shift--;
        }
    } else if (probe_ok && !all && resident > 2 * (size_t)s->touched + 8) {
        /* A partly resident set that outgrew what one use writes: drop it at the next put.
         * (A fully resident buffer waits for the periodic probe: it is probably dense.) */
        s->puts = (uint16_t)((1u << s->probe_shift) - 1);
    } else if (probe_ok && !(s->flags & ZP_SF_RESIDENT)) {
        s->puts = 0; /* a stable sparse user: mincore alone keeps its cost small */
    }
}

void zp_slot_release(zp_pool_t *pool, zp_slot_t *s)
{
    char *base = zp_slot_base(s);
    size_t bytes = s->span->slot_bytes;
    if (s->flags & ZP_SF_PINNED) {
        zp_os_unlock(base, bytes);
        atomic_fetch_sub(&pool->pinned_bytes, bytes);
    }
    /* The buffer was scrubbed when it was put, so a failed drop still leaves zeros. */
    zp_os_drop(base, bytes);
    s->flags &= (uint16_t)~(ZP_SF_RESIDENT | ZP_SF_PINNED | ZP_SF_PROBED | ZP_SF_SAMPLED);
    s->state = ZP_SLOT_EMPTY;
}

void zp_slot_pin(zp_pool_t *pool, zp_slot_t *s)
{
    if (!pool->cfg.pin || (s->flags & ZP_SF_PINNED))
        return;
    size_t bytes;
    char *mem = zp_slot_mem(s, &bytes);
    if (zp_os_lock(mem, bytes)) {
        s->flags |= ZP_SF_PINNED | ZP_SF_RESIDENT;
        atomic_fetch_add(&pool->pinned_bytes, bytes);
        return;
    }
    if (!atomic_exchange(&pool->pin_failed, true))
        zp_write_str(2, "zeropool: mlock failed (RLIMIT_MEMLOCK reached?): "
                        "buffers beyond the limit are not pinned\n");
}
