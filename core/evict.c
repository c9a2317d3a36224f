/* Shards: per-class free lists, the budget, and the two eviction policies. Every function here
 * runs with the shard's lock held.
 *
 * LIFO: free lists are stacks; when the budget or the shard's count is reached, the buffer
 * being put is released (its pages go back to the kernel, its address space is kept).
 *
 * CLOCK-Pro (Jiang, Chen, Zhang, USENIX ATC 2005), adapted to buffers. A "page" is a buffer
 * slot, an "access" is a get that reuses a pooled buffer, and "resident" means the pool holds
 * the buffer's memory. Each shard keeps a clock ring of its free resident buffers and of
 * non-resident "ghosts" (evicted slots still in their test period). Buffers are hot or cold;
 * a new buffer starts cold in a test period. Three hands:
 *   - the cold hand evicts cold buffers not reused since it last passed; a reused cold buffer
 *     in its test period is promoted to hot, one out of its test period gets a new one;
 *     an evicted buffer in its test period stays in the ring as a ghost;
 *   - the hot hand demotes hot buffers not reused since it last passed, and ends the test
 *     periods it passes (a ghost whose test period ends leaves the ring);
 *   - reusing a ghost's slot inside its test period means the cold space was too small: the
 *     cold target grows and the buffer comes back hot; a test period that ends unused shrinks it.
 * Hot/cold and reference bits travel with a buffer while it is out of the shard. */
#include "internal.h"
#include "zp_list.h"

static size_t zp_cls_bytes(const zp_pool_t *pool, const zp_slot_t *s)
{
    return pool->class_size[s->cls];
}

/* ---- the clock ring ---- */
static void zp_ring_insert(zp_shard_t *sh, zp_slot_t *s)
{
    zp_slot_t *at = sh->hand_hot;
    if (!at) {
        s->rnext = s->rprev = s;
        sh->hand_hot = sh->hand_cold = sh->hand_test = s;
    } else { /* the head of the list: just behind the hot hand, the last place any hand reaches */
        s->rnext = at;
        s->rprev = at->rprev;
        at->rprev->rnext = s;
        at->rprev = s;
    }
    s->flags |= ZP_SF_RING;
}

static void zp_ring_remove(zp_shard_t *sh, zp_slot_t *s)
{
    zp_slot_t *next = s->rnext == s ? NULL : s->rnext;
    if (sh->hand_hot == s)
        sh->hand_hot = next;
    if (sh->hand_cold == s)
        sh->hand_cold = next;
    if (sh->hand_test == s)
        sh->hand_test = next;
    if (next) {
        s->rprev->rnext = s->rnext;
        s->rnext->rprev = s->rprev;
    }
    s->rnext = s->rprev = NULL;
    s->flags &= (uint16_t)~ZP_SF_RING;
}

static size_t zp_shard_share(const zp_pool_t *pool)
{
    size_t share = pool->shard_budget >> __builtin_ctz(pool->shard_mask + 1);
    return share > pool->max_class_size ? share : pool->max_class_size;
}

void zp_shard_init(zp_pool_t *pool, zp_shard_t *sh)
{
    pthread_mutex_init(&sh->lock, NULL);
    sh->cold_target = zp_shard_share(pool) / 4;
}

static void zp_resident_account(zp_pool_t *pool, zp_shard_t *sh, zp_slot_t *s, long sign)
{
    size_t cb = zp_cls_bytes(pool, s);
    if (s->flags & ZP_SF_HOT)
        sh->ring_hot_bytes += (size_t)sign * cb;
    else
        sh->ring_cold_bytes += (size_t)sign * cb;
    sh->ring_resident += (size_t)sign;
}

static void zp_cold_target_adjust(zp_pool_t *pool, zp_shard_t *sh, long delta)
{
    size_t share = zp_shard_share(pool), lo = share / 8, hi = share - share / 8;
    size_t t = sh->cold_target + (size_t)delta;
    if (delta < 0 && (size_t)-delta > sh->cold_target)
        t = 0;
    sh->cold_target = t < lo ? lo : t > hi ? hi : t;
}

/* A ghost whose test period ends leaves the ring; the slot stays on the empty list. */
static void zp_ghost_expire(zp_pool_t *pool, zp_shard_t *sh, zp_slot_t *g)
{
    zp_ring_remove(sh, g);
    g->flags &= (uint16_t)~(ZP_SF_TEST | ZP_SF_HOT | ZP_SF_REF);
    sh->ring_ghosts--;
    zp_cold_target_adjust(pool, sh, -(long)zp_cls_bytes(pool, g));
}

/* Run the hot hand until it has demoted one hot buffer (or gone round once). */
static void zp_hand_hot(zp_pool_t *pool, zp_shard_t *sh)
{
    size_t steps = sh->ring_resident + sh->ring_ghosts;
    while (steps-- && sh->hand_hot) {
        zp_slot_t *e = sh->hand_hot;
        sh->hand_hot = e->rnext;
        if (e->state != ZP_SLOT_FREE) {
            if (sh->hand_hot == e)
                sh->hand_hot = NULL;
            zp_ghost_expire(pool, sh, e);
            continue;
        }
        if (!(e->flags & ZP_SF_HOT)) {
            e->flags &= (uint16_t)~ZP_SF_TEST; /* its test period ends */
            continue;
        }
        if (e->flags & ZP_SF_REF) {
            e->flags &= (uint16_t)~ZP_SF_REF;
            continue;
        }
        zp_resident_account(pool, sh, e, -1);
        e->flags &= (uint16_t)~ZP_SF_HOT;
        zp_resident_account(pool, sh, e, +1);
        return;
    }
}

/* Ghosts are bounded by the resident buffers, as CLOCK-Pro bounds non-resident pages by m. */
static void zp_ghosts_bound(zp_pool_t *pool, zp_shard_t *sh)
{
    while (sh->ring_ghosts > sh->ring_resident + 1 && sh->hand_test) {
        zp_slot_t *e = sh->hand_test;
        sh->hand_test = e->rnext;
        if (e->state != ZP_SLOT_FREE) {
            if (sh->hand_test == e)
                sh->hand_test = NULL;
            zp_ghost_expire(pool, sh, e);
        }
    }
}

static void zp_evict_slot(zp_pool_t *pool, zp_shard_t *sh, zp_slot_t *s, zp_tstats_t *st)
{
    zp_slot_release(pool, s);
    ZP_LIST_PUSH(&sh->empty[s->cls], s, fnext, fprev);
    sh->class_evictions[s->cls]++;
    ZP_STAT_ADD(st, evictions, 1);
}

static void zp_free_unlink(zp_pool_t *pool, zp_shard_t *sh, zp_slot_t *s)
{
    size_t cb = zp_cls_bytes(pool, s);
    ZP_LIST_UNLINK(&sh->free[s->cls], s, fnext, fprev);
    if (--sh->nfree[s->cls] == 0)
        atomic_fetch_and_explicit(&sh->class_mask, ~((uint64_t)1 << s->cls), memory_order_relaxed);
    sh->count--;
    sh->bytes -= cb;
    atomic_fetch_sub_explicit(&pool->shard_bytes, cb, memory_order_relaxed);
    if (!(s->flags & ZP_SF_LAZY))
        atomic_fetch_sub_explicit(&pool->hot_bytes, cb, memory_order_relaxed);
}

/* CLOCK-Pro: evict one cold buffer that was not reused, demoting hot ones if none is cold. */
static bool zp_evict_one(zp_pool_t *pool, zp_shard_t *sh, size_t need, zp_tstats_t *st)
{
    for (int round = 0; round < 3; round++) {
        size_t steps = sh->ring_resident + sh->ring_ghosts;
        while (steps-- && sh->hand_cold) {
            zp_slot_t *e = sh->hand_cold;
            sh->hand_cold = e->rnext;
            if (e->state != ZP_SLOT_FREE || (e->flags & ZP_SF_HOT))
                continue;
            if (e->flags & ZP_SF_REF) {
                e->flags &= (uint16_t)~ZP_SF_REF;
                if (e->flags & ZP_SF_TEST) { /* reused within its test period: hot */
                    zp_resident_account(pool, sh, e, -1);
                    e->flags = (uint16_t)((e->flags & ~ZP_SF_TEST) | ZP_SF_HOT);
                    zp_resident_account(pool, sh, e, +1);
                    if (sh->ring_hot_bytes + sh->cold_target > sh->bytes)
                        zp_hand_hot(pool, sh);
                } else {
                    e->flags |= ZP_SF_TEST;
                }
                continue;
            }
            if (zp_cls_bytes(pool, e) < need)
                continue;
            zp_free_unlink(pool, sh, e);
            zp_resident_account(pool, sh, e, -1);
            if (e->flags & ZP_SF_TEST) {
                sh->ring_ghosts++; /* stays in the ring, non-resident, until its test ends */
            } else {
                if (sh->hand_cold == e)
                    sh->hand_cold = NULL;
                zp_ring_remove(sh, e);
            }
            zp_evict_slot(pool, sh, e, st);
            zp_ghosts_bound(pool, sh);
            return true;
        }
        if (!sh->ring_hot_bytes)
            return false;
        zp_hand_hot(pool, sh);
    }
    return false;
}

/* Admission of a buffer that is not hot: it may displace only cold buffers that were not
 * reused either (their bits untouched), never a buffer that earned its place. */
static bool zp_evict_unreferenced(zp_pool_t *pool, zp_shard_t *sh, size_t need, zp_tstats_t *st)
{
    size_t steps = sh->ring_resident + sh->ring_ghosts;
    for (zp_slot_t *e = sh->hand_cold; steps-- && e; e = e->rnext) {
        if (e->state != ZP_SLOT_FREE || (e->flags & (ZP_SF_HOT | ZP_SF_REF)) ||
            zp_cls_bytes(pool, e) < need)
            continue;
        sh->hand_cold = e->rnext;
        zp_free_unlink(pool, sh, e);
        zp_resident_account(pool, sh, e, -1);
        if (e->flags & ZP_SF_TEST) {
            sh->ring_ghosts++;
        } else {
            zp_ring_remove(sh, e);
        }
        zp_evict_slot(pool, sh, e, st);
        zp_ghosts_bound(pool, sh);
        return true;
    }
    return false;
}

void zp_shard_push(zp_pool_t *pool, zp_shard_t *sh, zp_slot_t *s, zp_tstats_t *st)
{
    size_t cb = zp_cls_bytes(pool, s);
    bool clock = pool->cfg.eviction == ZP_EVICT_CLOCK_PRO;
    /* A buffer displaces at most one other, and only one at least as big as the room it
     * lacks: letting a 1.5 MiB buffer push out a dozen small ones traded many hits for one
     * (pages in CLOCK-Pro are all one size; buffers are not). Only a hot buffer may take
     * the place of a referenced cold one; any other is admitted like a newcomer. So in a loop
     * larger than the budget, nothing displaces what is resident, as with LIFO. */
    bool newcomer = !(s->flags & ZP_SF_HOT);
    for (unsigned victims = 0;; victims++) {
        size_t total = atomic_load_explicit(&pool->shard_bytes, memory_order_relaxed) + cb;
        unsigned cap = pool->cfg.max_buffers_per_shard; /* 0: the byte budget alone */
        bool full = cap && sh->count >= cap;
        if (!full && total <= pool->shard_budget)
            break;
        size_t need = total > pool->shard_budget ? total - pool->shard_budget : 0;
        bool made_room = clock && victims < 1 &&
                         (newcomer ? zp_evict_unreferenced(pool, sh, need, st)
                                   : zp_evict_one(pool, sh, need, st));
        if (!made_room) {
            zp_evict_slot(pool, sh, s, st); /* LIFO, or nothing else to evict: release this one */
            return;
        }
    }
    s->state = ZP_SLOT_FREE;
    s->shard = (uint16_t)(sh - pool->shards);
    ZP_LIST_PUSH(&sh->free[s->cls], s, fnext, fprev);
    if (sh->nfree[s->cls]++ == 0)
        atomic_fetch_or_explicit(&sh->class_mask, (uint64_t)1 << s->cls, memory_order_relaxed);
    sh->count++;
    sh->bytes += cb;
    size_t now = atomic_fetch_add_explicit(&pool->shard_bytes, cb, memory_order_relaxed) + cb;
    if (!(s->flags & ZP_SF_LAZY))
        atomic_fetch_add_explicit(&pool->hot_bytes, cb, memory_order_relaxed);
    zp_pool_note_peak(pool, now);
    if (clock) {
        zp_ring_insert(sh, s);
        zp_resident_account(pool, sh, s, +1);
        if (sh->ring_hot_bytes + sh->cold_target > sh->bytes + cb)
            zp_hand_hot(pool, sh);
    }
}

zp_slot_t *zp_shard_pop(zp_pool_t *pool, zp_shard_t *sh, unsigned cls)
{
    zp_slot_t *s = sh->free[cls];
    if (!s)
        return NULL;
    zp_free_unlink(pool, sh, s);
    if (s->flags & ZP_SF_RING) {
        zp_resident_account(pool, sh, s, -1);
        zp_ring_remove(sh, s);
    }
    s->flags |= ZP_SF_REF; /* an access: the buffer was reused */
    if (s->flags & ZP_SF_LAZY) /* the kernel may have taken pages: mincore at its next put */
        s->flags &= (uint16_t)~(ZP_SF_LAZY | ZP_SF_RESIDENT);
    return s;
}

/* An evicted slot of class cls, for reuse of its address space (its memory reads as zero). */
zp_slot_t *zp_shard_pop_empty(zp_pool_t *pool, zp_shard_t *sh, unsigned cls)
{
    zp_slot_t *s = sh->empty[cls];
    if (!s)
        return NULL;
    ZP_LIST_UNLINK(&sh->empty[cls], s, fnext, fprev);
    if (s->flags & ZP_SF_RING) {
        /* Reused inside its test period: the cold space was too small; come back hot. */
        zp_ring_remove(sh, s);
        sh->ring_ghosts--;
        zp_cold_target_adjust(pool, sh, (long)zp_cls_bytes(pool, s));
        s->flags = (uint16_t)((s->flags & ~(ZP_SF_TEST | ZP_SF_REF)) | ZP_SF_HOT);
    } else {
        s->flags = (uint16_t)((s->flags & ~(ZP_SF_HOT | ZP_SF_REF)) | ZP_SF_TEST);
    }
    return s;
}

/* A free buffer out of its lists and its memory released; it goes to the empty list. */
static size_t zp_shard_release(zp_pool_t *pool, zp_shard_t *sh, zp_slot_t *s)
{
    size_t cb = zp_cls_bytes(pool, s);
    zp_free_unlink(pool, sh, s);
    if (s->flags & ZP_SF_RING) {
        zp_resident_account(pool, sh, s, -1);
        zp_ring_remove(sh, s);
    }
    s->flags &= (uint16_t)~(ZP_SF_HOT | ZP_SF_REF | ZP_SF_TEST);
    zp_slot_release(pool, s);
    ZP_LIST_PUSH(&sh->empty[s->cls], s, fnext, fprev);
    return cb;
}

size_t zp_shard_trim(zp_pool_t *pool, zp_shard_t *sh)
{
    size_t released = 0;
    for (unsigned c = 0; c < pool->nclasses; c++) {
        while (sh->free[c])
            released += zp_shard_release(pool, sh, sh->free[c]);
        /* Everything goes, the history of evicted buffers too: their spans may then go. */
        for (zp_slot_t *s = sh->empty[c]; s; s = s->fnext)
            if (s->flags & ZP_SF_RING)
                zp_ghost_expire(pool, sh, s);
    }
    return released;
}

size_t zp_shard_decay(zp_pool_t *pool, zp_shard_t *sh, uint32_t now, uint32_t idle)
{
    size_t released = 0;
    for (unsigned c = 0; c < pool->nclasses; c++)
        for (zp_slot_t *s = sh->free[c], *n; s; s = n) {
            n = s->fnext;
            if (now - s->idle_ms >= idle)
                released += zp_shard_release(pool, sh, s);
        }
    return released;
}

void zp_shard_forget(zp_pool_t *pool, zp_shard_t *sh, zp_slot_t *s)
{
    if (s->state == ZP_SLOT_FREE) {
        zp_free_unlink(pool, sh, s);
        if (s->flags & ZP_SF_RING) {
            zp_resident_account(pool, sh, s, -1);
            zp_ring_remove(sh, s);
        }
        zp_slot_release(pool, s);
    } else {
        ZP_LIST_UNLINK(&sh->empty[s->cls], s, fnext, fprev);
        if (s->flags & ZP_SF_RING) {
            zp_ring_remove(sh, s);
            sh->ring_ghosts--;
        }
    }
    s->flags &= (uint16_t)~(ZP_SF_HOT | ZP_SF_REF | ZP_SF_TEST);
}
