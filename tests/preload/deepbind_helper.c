/* A library the deepbind test opens with RTLD_DEEPBIND: its malloc and free bind to glibc's
 * own, not to the preloaded ones, so the blocks it returns are glibc's. */
#include <stdlib.h>
#include <string.h>

void *helper_malloc_fn(void);
char *helper_strdup(const char *s);
void *helper_alloc(size_t n);

void *helper_malloc_fn(void)
{
    return (void *)malloc;
}

char *helper_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = malloc(n);
    if (p)
        memcpy(p, s, n);
    return p;
}

void *helper_alloc(size_t n)
{
    return malloc(n);
}

/* For test_foreign_scrub: a glibc block full of a secret, and a count of the secret's bytes a
 * fresh glibc block of the same size still holds (freed by glibc's own free). */
void *helper_secret(size_t n, int byte);
size_t helper_leaked(size_t n, int byte);
size_t helper_count(const unsigned char *q, size_t n, int byte);

void *helper_secret(size_t n, int byte)
{
    char *p = malloc(n);
    if (p)
        memset(p, byte, n);
    return p;
}

/* Bytes of the secret in q, counted by whole 8-byte words of it: glibc writes its list
 * pointers into a free chunk, and a pointer's byte may equal the secret's by chance. */
size_t helper_count(const unsigned char *q, size_t n, int byte)
{
    size_t count = 0;
    for (size_t i = 0; q != NULL && i + 8 <= n; i += 8) {
        size_t same = 0;
        for (size_t k = 0; k < 8; k++)
            same += q[i + k] == (unsigned char)byte;
        count += same == 8 ? 8 : 0;
    }
    return count;
}

size_t helper_leaked(size_t n, int byte)
{
    unsigned char *q = malloc(n);
    size_t count = helper_count(q, n, byte);
    free(q);
    return count;
}
