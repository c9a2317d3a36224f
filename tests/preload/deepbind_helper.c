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
