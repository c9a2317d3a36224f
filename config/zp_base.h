/* Compiler hints every layer uses (config/ is the lowest, so they live here): branch weights,
 * slow-path attributes and stringising, each defined once. */
#ifndef ZP_BASE_H
#define ZP_BASE_H

#define ZP_LIKELY(x) __builtin_expect(!!(x), 1)
#define ZP_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define ZP_NOINLINE __attribute__((noinline))
#define ZP_COLD __attribute__((noinline, cold))
#define ZP_STR2(x) #x
#define ZP_STR(x) ZP_STR2(x)

#endif
