/* Thread caches and the pool registry. Each thread keeps, per pool (up to ZP_TLS_POOLS pools at
 * once), a small LIFO stack of scrubbed free buffers that it reaches with no lock and no
 * atomic. A cache leases its byte allowance from the pool's budget as it needs it, buffer by
 * buffer, up to an equal share of the lease space among the caches, so shards plus caches
 * never hold more than pool_bytes and 64 threads that each reuse one buffer all get a lease.
 * When a lease falls short the pool bumps lease_gen, and every cache gives back what it does
 * not hold (and what it holds beyond its share) on its next slow path. At thread exit a pthread key destructor
 * returns every cached buffer to the shards; frees that come from destructors running after
 * ours go straight to the shards (zp_tls.exiting). Pools are found by a unique id, so a cache
 * never serves a destroyed pool or another pool at the same address. */
#include "internal.h"
#include "platform.h"
#include "zp_list.h"

#include <string.h>
#include <unistd.h>

__thread zp_tls_t zp_tls __attribute__((tls_model("initial-exec")));

pthread_mutex_t zp_registry_lock = PTHREAD_MUTEX_INITIALIZER;
zp_pool_t *zp_registry;
static pthread_key_t zp_key;
static zp_tcache_t *zp_tc_freelist; /* registry lock */
static char *zp_tc_next, *zp_tc_end; /* the block caches are carved from (registry lock) */

static zp_pool_t *zp_registry_find(uint64_t id)
{
    for (zp_pool_t *p = zp_registry; p; p = p->next)
        if (p->id == id)
            return p;
    return NULL;
}

static zp_tcache_t *zp_tc_alloc(void)
{
    /* Reused caches first; then the next one carved from a block of 16 pages, so that a block
     * costs memory only as its caches are handed out (threading a list through a whole block
     * at once touched all 16 pages in every process). */
    zp_tcache_t *tc = zp_tc_freelist;
    if (tc) {
        zp_tc_freelist = tc->next;
    } else {
        if ((size_t)(zp_tc_end - zp_tc_next) < sizeof(zp_tcache_t)) {
            size_t bytes = 16 * zp_os_page;
            char *m = zp_os_meta_alloc(bytes);
            if (!m)
                return NULL;
            zp_tc_next = m;
            zp_tc_end = m + bytes;
        }
        tc = (zp_tcache_t *)(void *)zp_tc_next;
        zp_tc_next += sizeof(zp_tcache_t);
    }
    memset(tc, 0, sizeof *tc);
    return tc;
}

unsigned zp_thread_shard(zp_pool_t *pool)
{
    if (!zp_tls.shard_seed)
        zp_tls.shard_seed = zp_os_thread_id() | 0x80000000u;
    /* Fibonacci hashing of the thread id; the mask keeps it a power-of-two shard index. */
    return (unsigned)((zp_tls.shard_seed * 0x9E3779B97F4A7C15ull) >> 40) & pool->shard_mask;
}

/* Move the oldest `move` cached buffers to the cache's shard, under one lock; their pages
 * are handed to the kernel lazily first, outside it, stamped idle since `stamp`. */
static void zp_tcache_spill(zp_pool_t *pool, zp_tcache_t *tc, unsigned move, uint32_t stamp)
{
    if (!move)
        return;
    for (unsigned i = 0; i < move; i++)
        zp_slot_lazy(pool, tc->stack[i], stamp);
    zp_shard_t *sh = &pool->shards[tc->shard];
    pthread_mutex_lock(&sh->lock);
    for (unsigned i = 0; i < move; i++) {
        zp_slot_t *s = tc->stack[i];
        ZP_STAT_SUB(tc, bytes, pool->class_size[s->cls]);
        zp_shard_push(pool, sh, s, &tc->st);
    }
    pthread_mutex_unlock(&sh->lock);
    memmove(tc->stack, tc->stack + move, (tc->n - move) * sizeof tc->stack[0]);
    tc->n -= move;
}

void zp_tcache_flush(zp_pool_t *pool, zp_tcache_t *tc, unsigned keep)
{
    if (tc->n > keep)
        zp_tcache_spill(pool, tc, tc->n - keep, zp_os_now_ms());
}

void zp_tcache_flush_idle(zp_pool_t *pool, zp_tcache_t *tc, uint32_t since)
{
    zp_tcache_spill(pool, tc, tc->n, since);
}

/* An equal share of the lease space among the caches, never below one largest buffer. */
static size_t zp_tcache_share(const zp_pool_t *pool)
{
    size_t share = pool->lease_cap / (pool->ncaches ? pool->ncaches : 1);
    if (share < pool->max_class_size)
        share = pool->max_class_size;
    return share < pool->cfg.tls_cache_bytes ? share : pool->cfg.tls_cache_bytes;
}

/* Grow the cache's lease to `need` bytes (its cached bytes plus the buffer being put), as far
 * as its share and the unleased space allow. Only the owning thread changes its limit, so the
 * lock-free hit path never sees a limit lowered under it. */
void zp_tcache_lease(zp_pool_t *pool, zp_tcache_t *tc, size_t need)
{
    pthread_mutex_lock(&pool->lock);
    size_t share = zp_tcache_share(pool);
    if (need > share)
        need = share;
    if (need > tc->limit) {
        size_t grow = need - tc->limit, room = pool->lease_cap - pool->leased;
        if (grow > room) {
            grow = room;
            atomic_fetch_add_explicit(&pool->lease_gen, 1, memory_order_relaxed);
        }
        tc->limit += grow;
        pool->leased += grow;
    }
    tc->lease_gen = atomic_load_explicit(&pool->lease_gen, memory_order_relaxed);
    pthread_mutex_unlock(&pool->lock);
}

/* Another cache was refused lease space: keep only what this one holds, within its share. */
void zp_tcache_refit(zp_pool_t *pool, zp_tcache_t *tc)
{
    uint64_t gen = atomic_load_explicit(&pool->lease_gen, memory_order_relaxed);
    if (ZP_LIKELY(gen == tc->lease_gen))
        return;
    tc->lease_gen = gen;
    pthread_mutex_lock(&pool->lock);
    size_t share = zp_tcache_share(pool);
    pthread_mutex_unlock(&pool->lock);
    unsigned keep = tc->n;
    size_t bytes = tc->bytes;
    for (unsigned i = 0; keep && bytes > share; i++, keep--)
        bytes -= pool->class_size[tc->stack[i]->cls];
    zp_tcache_flush(pool, tc, keep);
    pthread_mutex_lock(&pool->lock);
    pool->leased -= tc->limit - tc->bytes;
    tc->limit = tc->bytes;
    pthread_mutex_unlock(&pool->lock);
}

/* Detach a cache from its (live) pool: buffers to the shards, counters and lease back. */
static void zp_tcache_retire(zp_pool_t *pool, zp_tcache_t *tc)
{
    zp_tcache_flush(pool, tc, 0);
    pthread_mutex_lock(&pool->stats_lock);
#define ZP_TS_SUM(n) pool->retired.n += tc->st.n;
    ZP_TSTATS(ZP_TS_SUM)
#undef ZP_TS_SUM
    for (unsigned c = 0; c < ZP_MAX_CLASSES; c++)
        pool->retired_class_gets[c] += tc->class_gets[c];
    pthread_mutex_unlock(&pool->stats_lock);
    pthread_mutex_lock(&pool->lock);
    pool->leased -= tc->limit;
    pool->ncaches -= tc->cap != 0;
    ZP_LIST_UNLINK(&pool->caches, tc, next, prev);
    pthread_mutex_unlock(&pool->lock);
}

/* Give up TLS slot i: retire its cache if the pool is alive, and recycle the cache. */
static void zp_tls_slot_drop(unsigned i)
{
    zp_tls_slot_t *slot = &zp_tls.slot[i];
    if (!slot->pool_id)
        return;
    pthread_mutex_lock(&zp_registry_lock);
    zp_pool_t *pool = zp_registry_find(slot->pool_id);
    if (pool && slot->tc->pool == pool)
        zp_tcache_retire(pool, slot->tc);
    slot->tc->next = zp_tc_freelist;
    zp_tc_freelist = slot->tc;
    pthread_mutex_unlock(&zp_registry_lock);
    slot->pool_id = 0;
    slot->tc = NULL;
}

static void zp_tls_destructor(void *arg)
{
    (void)arg;
    zp_tls.exiting = true;
    for (unsigned i = 0; i < ZP_TLS_POOLS; i++)
        zp_tls_slot_drop(i);
}

zp_tcache_t *zp_tcache_slow(zp_pool_t *pool)
{
    for (unsigned i = 0; i < ZP_TLS_POOLS; i++)
        if (zp_tls.slot[i].pool_id == pool->id) {
            zp_tls.last = i;
            return zp_tls.slot[i].tc;
        }
    if (zp_tls.exiting)
        return NULL;
    /* A free TLS slot, else give up the one after the last used (round robin). */
    unsigned i = 0;
    while (i < ZP_TLS_POOLS && zp_tls.slot[i].pool_id)
        i++;
    if (i == ZP_TLS_POOLS) {
        i = (zp_tls.last + 1) % ZP_TLS_POOLS;
        zp_tls_slot_drop(i);
    }
    if (!zp_tls.key_set) {
        /* Arms the thread-exit destructor. Our key is created early, so glibc keeps its value
         * in the thread's first block and does not allocate here. */
        pthread_setspecific(zp_key, (void *)1);
        zp_tls.key_set = true;
    }
    pthread_mutex_lock(&zp_registry_lock);
    zp_tcache_t *tc = zp_tc_alloc();
    pthread_mutex_unlock(&zp_registry_lock);
    if (!tc)
        return NULL;
    tc->pool = pool;
    tc->pool_id = pool->id;
    tc->cap = pool->cfg.tls_cache_size;
    tc->shard = zp_thread_shard(pool);
    /* No lease yet: the first put that needs one asks (zp_tcache_lease). */
    tc->limit = 0;
    tc->max_size = !tc->cap ? 0
                   : pool->cfg.tls_cache_bytes < pool->max_class_size ? pool->cfg.tls_cache_bytes
                                                                      : pool->max_class_size;
    pthread_mutex_lock(&pool->lock);
    pool->ncaches += tc->cap != 0;
    tc->lease_gen = atomic_load_explicit(&pool->lease_gen, memory_order_relaxed);
    ZP_LIST_PUSH(&pool->caches, tc, next, prev);
    pthread_mutex_unlock(&pool->lock);
    zp_tls.slot[i].pool_id = pool->id;
    zp_tls.slot[i].tc = tc;
    zp_tls.last = i;
    return tc;
}

/* Pool destroy (registry lock held): caches of other threads are marked dead; each thread
 * recycles its dead cache when it next looks, or at exit. Their buffers die with the pool. */
void zp_tcache_detach_all(zp_pool_t *pool)
{
    for (zp_tcache_t *tc = pool->caches; tc; tc = tc->next)
        tc->pool = NULL;
    pool->caches = NULL;
    for (unsigned i = 0; i < ZP_TLS_POOLS; i++)
        if (zp_tls.slot[i].pool_id == pool->id) { /* ours we can recycle now */
            zp_tls.slot[i].tc->next = zp_tc_freelist;
            zp_tc_freelist = zp_tls.slot[i].tc;
            zp_tls.slot[i].pool_id = 0;
            zp_tls.slot[i].tc = NULL;
        }
}

static bool zp_tcache_is_mine(const zp_tcache_t *tc)
{
    for (unsigned i = 0; i < ZP_TLS_POOLS; i++)
        if (zp_tls.slot[i].tc == tc)
            return true;
    return false;
}

/* ---- fork: every lock in a fixed order (registry, then each pool: pool, stats, shards) ---- */
static void zp_fork_prepare(void)
{
    pthread_mutex_lock(&zp_registry_lock);
    for (zp_pool_t *p = zp_registry; p; p = p->next) {
        pthread_mutex_lock(&p->lock);
        pthread_mutex_lock(&p->stats_lock);
        for (unsigned i = 0; i <= p->shard_mask; i++)
            pthread_mutex_lock(&p->shards[i].lock);
    }
    zp_span_fork_prepare();
}

static void zp_fork_parent(void)
{
    zp_span_fork_parent();
    for (zp_pool_t *p = zp_registry; p; p = p->next) {
        for (unsigned i = 0; i <= p->shard_mask; i++)
            pthread_mutex_unlock(&p->shards[i].lock);
        pthread_mutex_unlock(&p->stats_lock);
        pthread_mutex_unlock(&p->lock);
    }
    pthread_mutex_unlock(&zp_registry_lock);
}

/* Is s in one of the calling thread's caches? */
static bool zp_tcache_holds_mine(const zp_slot_t *s)
{
    for (unsigned i = 0; i < ZP_TLS_POOLS; i++) {
        const zp_tcache_t *tc = zp_tls.slot[i].tc;
        for (unsigned j = 0; tc && j < tc->n; j++)
            if (tc->stack[j] == s)
                return true;
    }
    return false;
}

/* A cache of a thread that does not exist in a forked child. That thread changed its cache
 * without locks, so fork may have caught it half-way: a slot it was handing out, or one
 * listed twice during a shift. Trust none of it: give each slot's memory back to the kernel
 * (whatever that thread wrote is gone) and keep only its address space, as an evicted slot. */
static void zp_tcache_abandon(zp_pool_t *pool, zp_tcache_t *tc)
{
    zp_shard_t *sh = &pool->shards[zp_thread_shard(pool)]; /* where the child will look */
    unsigned n = tc->n < ZP_TCACHE_MAX ? tc->n : ZP_TCACHE_MAX;
    for (unsigned i = 0; i < n; i++) {
        /* A stale entry may name a slot that is now in a shard, live, or in our own cache:
         * only a slot still marked as cached, and not by us, is this cache's to reclaim. */
        zp_slot_t *s = tc->stack[i];
        if (!s || s->state != ZP_SLOT_CACHED || zp_tcache_holds_mine(s))
            continue;
        zp_slot_release(pool, s);
        s->flags &= (uint16_t)~(ZP_SF_HOT | ZP_SF_REF | ZP_SF_TEST | ZP_SF_RING);
        ZP_LIST_PUSH(&sh->empty[s->cls], s, fnext, fprev);
    }
    tc->n = 0;
    tc->bytes = 0;
    pool->leased -= tc->limit;
    pool->ncaches -= tc->cap != 0;
#define ZP_TS_SUM(n) pool->retired.n += tc->st.n;
    ZP_TSTATS(ZP_TS_SUM)
#undef ZP_TS_SUM
    ZP_LIST_UNLINK(&pool->caches, tc, next, prev);
}

/* In the child only the forking thread exists: re-initialise the locks, then reclaim the
 * caches of the threads that are gone. */
static void zp_fork_child(void)
{
    zp_span_fork_child();
    for (zp_pool_t *p = zp_registry; p; p = p->next) {
        for (unsigned i = 0; i <= p->shard_mask; i++)
            pthread_mutex_init(&p->shards[i].lock, NULL);
        pthread_mutex_init(&p->stats_lock, NULL);
        pthread_mutex_init(&p->lock, NULL);
    }
    pthread_mutex_init(&zp_registry_lock, NULL);
    zp_tls.shard_seed = 0; /* a new thread id: a new shard */
    for (zp_pool_t *p = zp_registry; p; p = p->next) {
        zp_tcache_t *tc = p->caches;
        while (tc) {
            zp_tcache_t *next = tc->next;
            if (zp_tcache_is_mine(tc)) {
                tc->shard = zp_thread_shard(p);
            } else {
                zp_tcache_abandon(p, tc);
                tc->next = zp_tc_freelist;
                zp_tc_freelist = tc;
            }
            tc = next;
        }
    }
}

void zp_tcache_global_init(void)
{
    pthread_key_create(&zp_key, zp_tls_destructor);
    pthread_atfork(zp_fork_prepare, zp_fork_parent, zp_fork_child);
}
