/* An outside program: built against the installed zeropool.pc only, it uses the public API
 * from several threads and checks that every buffer it gets is zero. */
#include <zeropool.h>

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#define THREADS 4
#define ROUNDS 200

static zp_pool_t *pool;

static void *worker(void *arg)
{
    size_t id = (size_t)arg;
    for (int r = 0; r < ROUNDS; r++) {
        size_t size = (64u << 10) + (size_t)((r * 7919 + (int)id * 104729) % (1 << 20));
        unsigned char *b = zp_get(pool, size);
        if (!b || zp_usable_size(pool, b) < size)
            return (void *)1;
        for (size_t i = 0; i < size; i += 512)
            if (b[i])
                return (void *)2;
        memset(b, 0xC0 + (int)id, size);
        zp_put(pool, b);
    }
    return NULL;
}

int main(void)
{
    pool = zp_pool_new(NULL);
    if (!pool) {
        perror("zp_pool_new");
        return 1;
    }
    pthread_t t[THREADS];
    for (size_t i = 0; i < THREADS; i++)
        pthread_create(&t[i], NULL, worker, (void *)i);
    int bad = 0;
    for (size_t i = 0; i < THREADS; i++) {
        void *rc;
        pthread_join(t[i], &rc);
        bad |= rc != NULL;
    }
    zp_stats_t st;
    zp_pool_stats(pool, &st);
    printf("outside: gets %llu puts %llu tls_hits %llu version %s\n", (unsigned long long)st.gets,
           (unsigned long long)st.puts, (unsigned long long)st.tls_hits, ZEROPOOL_VERSION);
    zp_pool_destroy(pool);
    return bad || st.gets != (unsigned long long)THREADS * ROUNDS || st.puts != st.gets;
}
