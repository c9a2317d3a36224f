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

void *helper_secret(size_t n, int byte)
{
    char *p = malloc(n);
    if (p)
        memset(p, byte, n);
    return p;
}

size_t helper_leaked(size_t n, int byte)
{
    unsigned char *q = malloc(n);
    size_t count = 0;
    for (size_t i = 0; q != NULL && i < n; i++)
        count += q[i] == (unsigned char)byte;
    free(q);
    return count;
}
