/* Scrubbing: make every byte a program could have written zero before anyone else can reach
 * the buffer, at a cost that follows the pages dirtied rather than the bytes requested.
 *
 *   zp_scrub ─┬─ buffer known fully resident ── explicit_bzero of the usable bytes
 *             ├─ otherwise ── mincore: explicit_bzero of the resident runs; MADV_DONTNEED of
 *             │               the others, which are either never written (already zero: never
 *             │               fault one in to scrub) or swapped out (still holding the data:
 *             │               the drop frees the swap entry, and they read as zero after)
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
#define ZP_COLD_RUNS_MAX 64 /* non-resident runs per mincore call dropped one by one */

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

/* Scrub a run of pages the kernel calls not resident: never written, or swapped out (mincore
 * cannot tell which). [a, b) is the part of the run inside the range. Its whole pages are
 * dropped: MADV_DONTNEED frees a swap entry and costs a page-table walk where nothing was ever
 * there, and the pages read as zero afterwards, without being faulted in. A page the range
 * shares with live bytes (the head of a shrunk buffer's tail) cannot be dropped: it is read,
 * which maps the zero page if it was never written, and zeroed only if it is not zero. Where
 * the drop fails (EINVAL on pages the program mlocked) or does not zero, stores do it. */
static void zp_scrub_cold(char *a, char *b, size_t *zeroed)
{
    size_t page = zp_os_page;
    char *da = (char *)(((uintptr_t)a + page - 1) & ~(uintptr_t)(page - 1));
    char *db = (char *)((uintptr_t)b & ~(uintptr_t)(page - 1));
    if (da > b)
        da = b;
    if (db < da)
        db = da;
    if (a < da && !zp_is_zero(a, (size_t)(da - a))) {
        explicit_bzero(a, (size_t)(da - a));
        *zeroed += (size_t)(da - a);
    }
    if (db > da && !(zp_drop_zeroes && zp_os_drop(da, (size_t)(db - da)))) {
        explicit_bzero(da, (size_t)(db - da));
        *zeroed += (size_t)(db - da);
    }
    if (db < b && !zp_is_zero(db, (size_t)(b - db))) {
        explicit_bzero(db, (size_t)(b - db));
        *zeroed += (size_t)(b - db);
    }
}

/* The residency vector is read eight pages at a time: a sparse buffer's is mostly long runs,
 * and a byte-by-byte walk of 4096 entries cost more than the mincore call itself. */
#define ZP_ONES 0x0101010101010101ull
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define ZP_PREV_BYTES(w, prev) (((w) << 8) | (prev))       /* byte k holds byte k-1's bit */
#define ZP_LAST_BYTE(w) ((w) >> 56)
#else
#define ZP_PREV_BYTES(w, prev) (((w) >> 8) | ((prev) << 56))
#define ZP_LAST_BYTE(w) ((w) & 1)
#endif

/* Resident pages in vec[0..n), and how many runs of non-resident ones it holds. */
static size_t zp_vec_count(const unsigned char *vec, size_t n, size_t *cold_runs)
{
    size_t res = 0, runs = 0, i = 0;
    uint64_t prev = 1; /* before the first page: a non-resident first page starts a run */
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, vec + i, 8);
        w &= ZP_ONES;
        /* Bytes of 0 or 1: a multiply by ZP_ONES sums them into the top byte. */
        res += (size_t)((w * ZP_ONES) >> 56);
        runs += (size_t)(((~w & ZP_PREV_BYTES(w, prev) & ZP_ONES) * ZP_ONES) >> 56);
        prev = ZP_LAST_BYTE(w);
    }
    for (; i < n; i++) {
        uint64_t b = vec[i] & 1;
        res += b;
        runs += !b && prev;
        prev = b;
    }
    *cold_runs = runs;
    return res;
}

/* End of the run of pages from i on that are resident as page i is (or not). */
static size_t zp_vec_run_end(const unsigned char *vec, size_t i, size_t n)
{
    unsigned char r = vec[i] & 1;
    uint64_t want = r ? ZP_ONES : 0;
    size_t j = i + 1;
    while (j < n && (j & 7)) {
        if ((vec[j] & 1) != r)
            return j;
        j++;
    }
    for (; j + 8 <= n; j += 8) {
        uint64_t w;
        memcpy(&w, vec + j, 8);
        if ((w & ZP_ONES) != want)
            break;
    }
    while (j < n && (vec[j] & 1) == r)
        j++;
    return j;
}

/* Scrub [from, from+len) as the kernel reports its pages: resident runs by stores, the others
 * by zp_scrub_cold. A chunk split into more than ZP_COLD_RUNS_MAX non-resident runs is dropped
 * whole instead, its resident pages with it (counted in *dropped): one call instead of one a
 * run. Returns the number of resident pages and adds the bytes zeroed by stores to *zeroed;
 * *all says whether every page was resident. */
static size_t zp_scrub_pages(char *from, size_t len, size_t *zeroed, size_t *dropped, bool *all)
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
        size_t cold_runs, here = zp_vec_count(vec, n, &cold_runs);
        resident += here;
        if (here < n)
            *all = false;
        char *lo = base < from ? from : base, *hi = base + n * page > end ? end : base + n * page;
        if (cold_runs > ZP_COLD_RUNS_MAX) {
            zp_scrub_cold(lo, hi, zeroed);
            *dropped += here * page;
            continue;
        }
        for (size_t i = 0; i < n;) {
            size_t j = zp_vec_run_end(vec, i, n);
            bool res = vec[i] & 1;
            char *a = base + i * page, *b = base + j * page;
            if (a < from)
                a = from;
            if (b > end)
                b = end;
            if (res) {
                explicit_bzero(a, (size_t)(b - a));
                *zeroed += (size_t)(b - a);
            } else {
                zp_scrub_cold(a, b, zeroed);
            }
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
    size_t zeroed = 0, dropped = 0;
    bool all;
    size_t resident = zp_scrub_pages(from, len, &zeroed, &dropped, &all);
    ZP_STAT_ADD(st, bytes_scrubbed, zeroed);
    if (dropped)
        ZP_STAT_ADD(st, bytes_dropped, dropped);
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
    s->flags &= (uint16_t)~(ZP_SF_RESIDENT | ZP_SF_PINNED | ZP_SF_PROBED | ZP_SF_SAMPLED |
                            ZP_SF_LAZY);
    s->resident = 0;
    s->state = ZP_SLOT_EMPTY;
}

void zp_slot_refresh(zp_pool_t *pool, zp_slot_t *s, zp_tstats_t *st)
{
    char *base = zp_slot_base(s);
    size_t bytes = s->span->slot_bytes;
    if (zp_os_refresh(base, bytes, pool->cfg.dontdump)) {
        ZP_STAT_ADD(st, bytes_dropped, bytes);
    } else {
        /* The mapping stays split; the pages still go. */
        zp_os_drop(base, bytes);
        size_t zeroed = 0;
        if (!zp_drop_zeroes) {
            explicit_bzero(base, bytes);
            zeroed = bytes;
        }
        ZP_STAT_ADD(st, bytes_scrubbed, zeroed);
    }
    s->flags &= (uint16_t)~(ZP_SF_MOVED | ZP_SF_RESIDENT | ZP_SF_PROBED | ZP_SF_SAMPLED);
    s->resident = 0;
}

/* Free memory the kernel can take: MADV_FREE. Measured per cycle of a fully written buffer,
 * the call costs 5 us at 1 MiB and 40 us at 4 MiB, and the program's first write to each page
 * afterwards about 0.3 us more (the page was made clean and old): a cycle through a lazy
 * buffer costs up to twice a resident one. MADV_DONTNEED instead would cost a page fault per
 * page at reuse (4x), holding the pages costs nothing but the kernel cannot take them. So a
 * pool keeps resident at most hot_cap bytes of free buffers in its shards (and what its thread
 * caches hold, the hot path), and hands the pages of the others to the kernel lazily. If the
 * kernel takes a page, it reads back as zero, and if not, it still holds the scrub's zeros:
 * known-zero holds either way. The RESIDENT flag is dropped when a lazy buffer leaves its
 * shard, so that its next put asks mincore what is there instead of faulting reclaimed pages
 * back in to zero them; a swapped-out page is freed by MADV_FREE like a resident one. */
void zp_slot_lazy(zp_pool_t *pool, zp_slot_t *s, uint32_t now)
{
    s->idle_ms = now;
    if (s->flags & (ZP_SF_PINNED | ZP_SF_LAZY))
        return;
    if (!(s->flags & ZP_SF_RESIDENT) && !s->resident) {
        s->flags |= ZP_SF_LAZY; /* holds nothing the kernel could not take */
        return;
    }
    size_t cb = pool->class_size[s->cls];
    if (atomic_load_explicit(&pool->hot_bytes, memory_order_relaxed) + cb <= pool->hot_cap)
        return;
    if (zp_os_lazy_free(zp_slot_base(s), s->span->slot_bytes))
        s->flags |= ZP_SF_LAZY;
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
    if (atomic_fetch_add(&pool->pin_failures, 1) == 0 && !pool->cfg.quiet)
        zp_write_str(2, "zeropool: mlock failed (RLIMIT_MEMLOCK reached?): "
                        "buffers beyond the limit are not pinned\n");
}
