/* Address space: chunks reserved with PROT_NONE in steps that grow with the pool, carved into
 * spans of one size class, and the global granule -> span map that makes ownership an O(1)
 * address test. Evicted and direct buffers keep their address space for reuse; a span is given
 * back only when no buffer of it is live or cached: when a reservation fails (a tight
 * RLIMIT_AS), and when the pool has needed a new chunk twice and found the span holding no
 * memory both times (sizes no longer used, their buffers evicted). Each range is unmapped exactly once: the pool owns
 * its spans and the tail of its last chunk, nothing else. All of it runs under pool->lock. */
#include "internal.h"
#include "platform.h"

#include <errno.h>
#include <string.h>

_Atomic(struct zp_span **) zp_map_l1[ZP_MAP_L1_SIZE];
static pthread_mutex_t zp_map_lock = PTHREAD_MUTEX_INITIALIZER;

/* Point every granule of [base, base+bytes) at span (or NULL). */
static bool zp_map_set(char *base, size_t bytes, zp_span_t *span)
{
    bool ok = true;
    pthread_mutex_lock(&zp_map_lock);
    for (uintptr_t a = (uintptr_t)base; a < (uintptr_t)base + bytes; a += ZP_GRANULE) {
        size_t i1 = a >> ZP_MAP_L1_SHIFT;
        zp_span_t **leaf = atomic_load_explicit(&zp_map_l1[i1], memory_order_relaxed);
        if (!leaf) {
            leaf = zp_os_meta_alloc(ZP_MAP_L2_SIZE * sizeof *leaf);
            if (!leaf) {
                ok = false;
                break;
            }
            atomic_store_explicit(&zp_map_l1[i1], leaf, memory_order_release);
        }
        __atomic_store_n(&leaf[(a >> ZP_GRANULE_SHIFT) & (ZP_MAP_L2_SIZE - 1)], span, __ATOMIC_RELEASE);
    }
    pthread_mutex_unlock(&zp_map_lock);
    return ok;
}

static size_t zp_round_up(size_t v, size_t a)
{
    return (v + a - 1) & ~(a - 1);
}

static void zp_space_unreserve(zp_pool_t *pool, char *p, size_t bytes)
{
    if (!bytes)
        return;
    zp_os_unreserve(p, bytes);
    atomic_fetch_sub(&pool->reserved_bytes, bytes);
}

/* A new chunk: the step is half of what the pool holds, from ZP_CHUNK_MIN (one start-up
 * buffer costs 8 MiB of address space, not 256) to ZP_CHUNK_DEFAULT; else exactly `bytes`
 * (what a tight RLIMIT_AS may still allow). The old tail is given back: spans never straddle. */
static char *zp_chunk_new(zp_pool_t *pool, size_t bytes)
{
    size_t step = zp_round_up(atomic_load(&pool->reserved_bytes) / 2, ZP_GRANULE);
    step = step < ZP_CHUNK_MIN ? ZP_CHUNK_MIN : step > ZP_CHUNK_DEFAULT ? ZP_CHUNK_DEFAULT : step;
    size_t want = bytes > step ? bytes : step;
    zp_space_unreserve(pool, pool->chunk_cur, (size_t)(pool->chunk_end - pool->chunk_cur));
    pool->chunk_cur = pool->chunk_end = NULL;
    char *p = zp_os_reserve(want, ZP_GRANULE, pool->cfg.dontdump);
    if (!p && want != bytes) {
        want = bytes;
        p = zp_os_reserve(want, ZP_GRANULE, pool->cfg.dontdump);
    }
    if (!p)
        return NULL;
    atomic_fetch_add(&pool->reserved_bytes, want);
    pool->chunk_cur = p + bytes;
    pool->chunk_end = p + want;
    return p;
}

/* Address space for a span: from the current chunk, else a new chunk. A new chunk is when
 * the pool grows: spans idle since the last growth go back first; and when the address space
 * runs out, every span no buffer uses goes back before the one retry. */
static char *zp_space_take(zp_pool_t *pool, size_t bytes)
{
    if ((size_t)(pool->chunk_end - pool->chunk_cur) >= bytes) {
        char *p = pool->chunk_cur;
        pool->chunk_cur += bytes;
        return p;
    }
    zp_span_reclaim(pool, false);
    char *p = zp_chunk_new(pool, bytes);
    if (!p && zp_span_reclaim(pool, true))
        p = zp_chunk_new(pool, bytes);
    if (!p)
        errno = ENOMEM;
    return p;
}

/* A guarded slot is a read-write VMA between two PROT_NONE ones: about two mappings each.
 * Past a quarter of vm.max_map_count in guarded slots (half the mappings), new slots are
 * carved from unguarded spans, one mapping for the whole span. */
static unsigned long zp_guard_limit;

static bool zp_guards_affordable(zp_pool_t *pool)
{
    if (!zp_guard_limit)
        zp_guard_limit = zp_os_max_map_count() / 4;
    return atomic_load(&pool->committed_regions) < zp_guard_limit;
}

static zp_span_t *zp_span_new(zp_pool_t *pool, size_t slot_bytes, unsigned nslots_hint,
                              bool guarded, bool direct)
{
    size_t stride = slot_bytes + (guarded ? zp_os_page : 0);
    size_t bytes = zp_round_up(stride * nslots_hint, ZP_GRANULE);
    char *base = NULL;
    /* Under a tight address-space limit, try fewer slots before giving up. */
    while (!(base = zp_space_take(pool, bytes))) {
        if (bytes <= ZP_GRANULE || bytes / 2 < stride)
            return NULL;
        bytes = zp_round_up(bytes / 2, ZP_GRANULE);
        if (bytes < stride)
            bytes = zp_round_up(stride, ZP_GRANULE);
    }
    /* A direct span is one slot, all of its address space its room to grow in (a guard page
     * kept at the end). */
    if (direct) {
        stride = bytes;
        slot_bytes = bytes - (guarded ? zp_os_page : 0);
    }
    uint32_t nslots = (uint32_t)(bytes / stride);
    size_t meta = zp_round_up(sizeof(zp_span_t) + nslots * sizeof(zp_slot_t), zp_os_page);
    zp_span_t *sp = zp_os_meta_alloc(meta);
    if (!sp) {
        zp_space_unreserve(pool, base, bytes);
        errno = ENOMEM;
        return NULL;
    }
    sp->pool = pool;
    sp->base = base;
    sp->bytes = bytes;
    sp->stride = stride;
    sp->slot_bytes = slot_bytes;
    sp->nslots = nslots;
    sp->guarded = guarded;
    sp->direct = direct;
    sp->meta_bytes = meta;
    for (uint32_t i = 0; i < nslots; i++)
        sp->slots[i].span = sp;
    if (!guarded) {
        /* One read-write region for the whole span: one VMA, no per-slot commit. */
        if (!direct && !zp_os_commit(base, bytes)) {
            zp_os_meta_free(sp, meta);
            zp_space_unreserve(pool, base, bytes);
            return NULL;
        }
        if (!direct)
            for (uint32_t i = 0; i < nslots; i++)
                sp->slots[i].flags |= ZP_SF_COMMITTED;
    }
    if (!zp_map_set(base, bytes, sp)) {
        zp_map_set(base, bytes, NULL);
        zp_os_meta_free(sp, meta);
        zp_space_unreserve(pool, base, bytes);
        errno = ENOMEM;
        return NULL;
    }
    sp->all_next = pool->spans;
    pool->spans = sp;
    return sp;
}

bool zp_slot_commit(zp_pool_t *pool, zp_slot_t *s)
{
    if (s->flags & ZP_SF_COMMITTED)
        return true;
    if (!zp_os_commit(zp_slot_base(s), s->span->slot_bytes))
        return false;
    s->flags |= ZP_SF_COMMITTED;
    atomic_fetch_add(&pool->committed_regions, 1);
    return true;
}

/* One never-used slot from *spp, or from a new span when it is full or when it is guarded
 * and guards are no longer affordable. */
static zp_slot_t *zp_span_carve_from(zp_pool_t *pool, unsigned cls, zp_span_t **spp)
{
    zp_span_t *sp = *spp;
    if (sp && sp->guarded && !zp_guards_affordable(pool))
        sp = NULL;
    if (!sp || sp->carved == sp->nslots) {
        /* Spans of a class start small and double, up to ZP_SPAN_TARGET of address space. */
        size_t cb = pool->class_size[cls];
        size_t most = ZP_SPAN_TARGET / cb, hint = sp ? 2 * (size_t)sp->nslots : 4;
        if (hint > most)
            hint = most;
        if (hint < 1)
            hint = 1;
        bool guarded = pool->cfg.guard_pages && zp_guards_affordable(pool);
        sp = zp_span_new(pool, cb, (unsigned)hint, guarded, false);
        *spp = sp;
        if (!sp)
            return NULL;
        pool->cur_span[cls] = sp;
    }
    zp_slot_t *s = &sp->slots[sp->carved];
    if (!zp_slot_commit(pool, s))
        return NULL;
    sp->carved++;
    s->cls = (uint8_t)cls;
    return s;
}

/* A never-used slot of class cls (pool lock held). Its memory is untouched, hence zero. */
zp_slot_t *zp_span_carve(zp_pool_t *pool, unsigned cls)
{
    zp_span_t *sp = pool->cur_span[cls];
    for (int attempt = 0; attempt < 2; attempt++) {
        zp_slot_t *s = zp_span_carve_from(pool, cls, &sp);
        if (s || !sp || !sp->guarded || errno != ENOMEM)
            return s;
        /* mprotect failed for want of mappings: degrade to unguarded spans, do not fail. */
        atomic_store(&pool->committed_regions, zp_guard_limit);
        sp = NULL;
    }
    return NULL;
}

/* A direct mapping for a request above max_pooled_size: reuse a released one that is big
 * enough (its address space was kept), else reserve a new span of one slot, with room to grow
 * if that much address space is there. */
void *zp_direct_get(zp_pool_t *pool, size_t size, size_t align, size_t room, size_t color,
                    zp_slot_t **slot_out)
{
    if (align < zp_os_page)
        align = zp_os_page;
    size_t need = zp_round_up(size + (align > zp_os_page ? align - zp_os_page : 0), zp_os_page);
    if (need < size) {
        errno = ENOMEM;
        return NULL;
    }
    room = room > need ? zp_round_up(room, zp_os_page) : need;
    pthread_mutex_lock(&pool->lock);
    zp_span_t **best = NULL;
    for (zp_span_t **pp = &pool->direct_free; *pp; pp = &(*pp)->next)
        if ((*pp)->slot_bytes >= need && (!best || (*pp)->slot_bytes < (*best)->slot_bytes))
            best = pp;
    zp_span_t *sp;
    if (best) {
        sp = *best;
        *best = sp->next;
        sp->next = NULL;
    } else {
        sp = zp_span_new(pool, room, 1, pool->cfg.guard_pages, true);
        if (!sp && room > need)
            sp = zp_span_new(pool, need, 1, pool->cfg.guard_pages, true);
    }
    pthread_mutex_unlock(&pool->lock);
    if (!sp)
        return NULL;
    zp_slot_t *s = &sp->slots[0];
    uintptr_t start = (uintptr_t)sp->base;
    uintptr_t user = (start + align - 1) & ~(uintptr_t)(align - 1);
    /* Within the last page's slack, so that the guard stays right after the end; a realloc's
     * page offset wherever it fits, so that its pages can move (the guard then follows the
     * page the buffer ends in, as after a growth in place). */
    if (align == zp_os_page)
        user += zp_color(start,
                         color == ZP_COLOR_ANY ? zp_round_up(size, zp_os_page) - size
                                               : sp->slot_bytes - (user - start) - size,
                         color);
    s->user_off = user - start;
    s->extent = zp_round_up(s->user_off + size, zp_os_page);
    /* Commit only what this use needs, from the aligned start: the guard sits right after it
     * and the alignment pad costs nothing. */
    size_t bytes;
    char *mem = zp_slot_mem(s, &bytes);
    if (!zp_os_commit_accounted(mem, bytes, pool->cfg.dontdump)) {
        pthread_mutex_lock(&pool->lock);
        sp->next = pool->direct_free;
        pool->direct_free = sp;
        pthread_mutex_unlock(&pool->lock);
        errno = ENOMEM;
        return NULL;
    }
    s->flags = ZP_SF_COMMITTED;
    *slot_out = s;
    return (void *)user;
}

bool zp_direct_resize(zp_pool_t *pool, zp_slot_t *s, size_t size)
{
    size_t ext = zp_round_up(s->user_off + size, zp_os_page);
    char *base = s->span->base;
    bool pinned = (s->flags & ZP_SF_PINNED) != 0;
    if (ext > s->span->slot_bytes || ext < s->user_off + size)
        return false;
    if (ext > s->extent) {
        size_t more = ext - s->extent;
        if (!zp_os_commit_accounted(base + s->extent, more, pool->cfg.dontdump))
            return false;
        if (pinned && !zp_os_lock(base + s->extent, more)) {
            zp_os_uncommit(base + s->extent, more); /* all of it pinned, or it moves */
            return false;
        }
        if (pinned)
            atomic_fetch_add(&pool->pinned_bytes, more);
    } else if (ext < s->extent) {
        /* Drops the pages, and their lock: nothing of them stays readable. */
        zp_os_uncommit(base + ext, s->extent - ext);
        if (pinned)
            atomic_fetch_sub(&pool->pinned_bytes, s->extent - ext);
    }
    s->extent = ext;
    return true;
}

/* Release a direct mapping: the kernel takes the memory, we keep the addresses. */
void zp_direct_put(zp_pool_t *pool, zp_slot_t *s)
{
    zp_span_t *sp = s->span;
    size_t bytes;
    char *mem = zp_slot_mem(s, &bytes);
    if (s->flags & ZP_SF_PINNED) {
        zp_os_unlock(mem, bytes);
        atomic_fetch_sub(&pool->pinned_bytes, bytes);
    }
    zp_os_uncommit(mem, bytes);
    s->flags = ZP_SF_EVER;
    s->state = ZP_SLOT_EMPTY;
    pthread_mutex_lock(&pool->lock);
    sp->next = pool->direct_free;
    pool->direct_free = sp;
    pthread_mutex_unlock(&pool->lock);
}

/* Forget a span and give its address space back (it is already off every list but all). */
static void zp_span_unmap(zp_pool_t *pool, zp_span_t *sp)
{
    if (sp->guarded && !sp->direct) {
        size_t committed = 0;
        for (uint32_t i = 0; i < sp->carved; i++)
            committed += (sp->slots[i].flags & ZP_SF_COMMITTED) != 0;
        atomic_fetch_sub(&pool->committed_regions, committed);
    }
    zp_map_set(sp->base, sp->bytes, NULL);
    zp_space_unreserve(pool, sp->base, sp->bytes);
    zp_os_meta_free(sp, sp->meta_bytes);
}

size_t zp_span_reclaim(zp_pool_t *pool, bool all)
{
    size_t released = 0;
    /* Direct spans on the free list hold no memory and no buffer. */
    for (zp_span_t **pp = &pool->direct_free; *pp;) {
        zp_span_t *sp = *pp;
        sp->dying = true;
        if (sp->dying)
            *pp = sp->next;
        else
            pp = &sp->next;
    }
    /* A pooled span goes when every slot it carved sits in a shard's free or empty list: a
     * slot in a thread's hands (live, cached, between a list and its holder) is in none. */
    for (zp_span_t *sp = pool->spans; sp; sp = sp->all_next)
        if (!sp->direct)
            sp->listed = 0, sp->has_free = false;
    for (unsigned i = 0; i <= pool->shard_mask; i++)
        pthread_mutex_lock(&pool->shards[i].lock);
    for (unsigned i = 0; i <= pool->shard_mask; i++)
        for (unsigned c = 0; c < pool->nclasses; c++) {
            for (zp_slot_t *s = pool->shards[i].free[c]; s; s = s->fnext)
                s->span->listed++, s->span->has_free = true;
            /* An evicted slot in its CLOCK-Pro test period is history still in use. */
            for (zp_slot_t *s = pool->shards[i].empty[c]; s; s = s->fnext)
                s->span->listed++, s->span->has_free |= (s->flags & ZP_SF_RING) != 0;
        }
    bool any = false;
    for (zp_span_t *sp = pool->spans; sp; sp = sp->all_next) {
        if (sp->direct)
            continue;
        bool idle = sp->listed == sp->carved && !sp->has_free;
        sp->idle_sweeps = idle ? (uint8_t)(sp->idle_sweeps < 2 ? sp->idle_sweeps + 1 : 2) : 0;
        sp->dying = all ? sp->listed == sp->carved : sp->idle_sweeps >= 2;
        any |= sp->dying;
    }
    if (any)
        for (unsigned i = 0; i <= pool->shard_mask; i++)
            for (unsigned c = 0; c < pool->nclasses; c++) {
                zp_shard_t *sh = &pool->shards[i];
                for (zp_slot_t *s = sh->free[c], *n; s; s = n) {
                    n = s->fnext;
                    if (s->span->dying)
                        zp_shard_forget(pool, sh, s);
                }
                for (zp_slot_t *s = sh->empty[c], *n; s; s = n) {
                    n = s->fnext;
                    if (s->span->dying)
                        zp_shard_forget(pool, sh, s);
                }
            }
    for (unsigned i = 0; i <= pool->shard_mask; i++)
        pthread_mutex_unlock(&pool->shards[i].lock);
    for (zp_span_t **pp = &pool->spans; *pp;) {
        zp_span_t *sp = *pp;
        if (!sp->dying) {
            pp = &sp->all_next;
            continue;
        }
        *pp = sp->all_next;
        for (unsigned c = 0; c < pool->nclasses; c++)
            if (pool->cur_span[c] == sp)
                pool->cur_span[c] = NULL;
        released += sp->bytes;
        zp_span_unmap(pool, sp);
    }
    return released;
}

/* Pool destroy: every span, then the tail of the last chunk (nothing else is ours). */
void zp_span_destroy_all(zp_pool_t *pool)
{
    for (zp_span_t *sp = pool->spans, *next; sp; sp = next) {
        next = sp->all_next;
        zp_span_unmap(pool, sp);
    }
    pool->spans = NULL;
    pool->direct_free = NULL;
    zp_space_unreserve(pool, pool->chunk_cur, (size_t)(pool->chunk_end - pool->chunk_cur));
    pool->chunk_cur = pool->chunk_end = NULL;
}

/* fork: the map lock is the last lock taken (tcache.c takes the others first). */
void zp_span_fork_prepare(void)
{
    pthread_mutex_lock(&zp_map_lock);
}

void zp_span_fork_parent(void)
{
    pthread_mutex_unlock(&zp_map_lock);
}

void zp_span_fork_child(void)
{
    pthread_mutex_init(&zp_map_lock, NULL);
}
