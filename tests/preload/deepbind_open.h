/* Opens libdeepbind_helper.so, built beside the test program, with RTLD_DEEPBIND: its malloc
 * and free are glibc's (test_deepbind, test_foreign_scrub). NULL on failure (dlerror says). */
#ifndef ZP_DEEPBIND_OPEN_H
#define ZP_DEEPBIND_OPEN_H

#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

static inline void *deepbind_helper_open(const char *argv0)
{
    char path[4096];
    snprintf(path, sizeof path, "%s", argv0);
    char *slash = strrchr(path, '/');
    char *name = slash ? slash + 1 : path;
    snprintf(name, sizeof path - (size_t)(name - path), "libdeepbind_helper.so");
    return dlopen(path, RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND);
}

#endif
