/* The three libm functions the private jemalloc refers to (exp, log, round), under the names
 * jemalloc-private.sh gives them (zp_je_libm_*), so that libzeropool.so does not need libm:
 * loading libm costs every preloaded process ~330 KiB of resident file pages, and most
 * programs never load it themselves. jemalloc calls them only for heap profiling (sampling
 * intervals and the unbiasing of sampled sizes), which alloc.c turns off ("prof:false"), so
 * they are never called in practice. They are still exact to within a few units in the last
 * place over the whole range (tests/unit/test_jemath.c compares them with libm's).
 * Also the two functions of libgcc's unwinder it refers to, for the same profiler and the same
 * reason (libgcc_s): with profiling off they are never called, and they unwind nothing. */
#include <stdint.h>
#include <string.h>
#include <unwind.h>

#include "je.h"

_Unwind_Reason_Code zp_je_unwind_backtrace(_Unwind_Trace_Fn fn, void *arg);
_Unwind_Ptr zp_je_unwind_getip(struct _Unwind_Context *ctx);

_Unwind_Reason_Code zp_je_unwind_backtrace(_Unwind_Trace_Fn fn, void *arg)
{
    (void)fn;
    (void)arg;
    return _URC_END_OF_STACK;
}

_Unwind_Ptr zp_je_unwind_getip(struct _Unwind_Context *ctx)
{
    (void)ctx;
    return 0;
}

static double jm_from_bits(uint64_t u)
{
    double d;
    memcpy(&d, &u, sizeof d);
    return d;
}

static uint64_t jm_bits(double d)
{
    uint64_t u;
    memcpy(&u, &d, sizeof u);
    return u;
}

/* ln 2 in two parts: hi has its low bits clear, so k * hi is exact for |k| < 2^11. */
#define JM_LN2_HI 6.93147180369123816490e-01
#define JM_LN2_LO 1.90821492927058770002e-10
#define JM_INV_LN2 1.44269504088896338700e+00

double zp_je_libm_round(double x)
{
    if (!(__builtin_fabs(x) < 0x1p52)) /* integral already, infinite or NaN */
        return x;
    double t = (double)(int64_t)x; /* truncated towards zero */
    if (__builtin_fabs(x - t) >= 0.5)
        t += __builtin_copysign(1.0, x);
    return __builtin_copysign(t, x); /* round(-0.3) is -0.0 */
}

double zp_je_libm_log(double x)
{
    uint64_t u = jm_bits(x);
    if (x != x || u == 0x7ff0000000000000ull) /* NaN, +inf */
        return x;
    if (x == 0)
        return -__builtin_inf();
    if (x < 0)
        return __builtin_nan("");
    int e = 0;
    if ((u >> 52) == 0) { /* subnormal: scale into the normal range first */
        x *= 0x1p54;
        u = jm_bits(x);
        e = -54;
    }
    e += (int)(u >> 52) - 1023;
    double m = jm_from_bits((u & 0x000fffffffffffffull) | 0x3ff0000000000000ull); /* [1, 2) */
    if (m > 1.41421356237309504880) { /* m in [sqrt(1/2), sqrt(2)): |s| below 0.172 */
        m *= 0.5;
        e++;
    }
    /* With f = m - 1 and s = f / (2 + f): log(m) = 2 atanh(s) = f - f^2/2 + s (f^2/2 + R),
     * R = 2 s^2/3 + 2 s^4/5 + ... (the arrangement of fdlibm's log, which keeps the large
     * terms exact); s^2 is below 0.0295, so ten terms of R reach 1e-17. */
    double f = m - 1, hfsq = 0.5 * f * f, s = f / (2 + f), z = s * s, r = 0;
    for (int k = 21; k >= 3; k -= 2)
        r = z * (2.0 / k + r);
    double lm = f - (hfsq - s * (hfsq + r));
    return (double)e * JM_LN2_HI + ((double)e * JM_LN2_LO + lm);
}

double zp_je_libm_exp(double x)
{
    if (x != x)
        return x;
    if (x > 709.782712893383973096) /* above log(DBL_MAX) */
        return __builtin_inf();
    if (x < -745.133219101941108420) /* below log of the smallest subnormal */
        return 0;
    /* x = k ln2 + r, |r| <= ln2 / 2; exp(r) by its Taylor series (r^14 / 14! below 4e-18). */
    double kd = zp_je_libm_round(x * JM_INV_LN2);
    int k = (int)kd;
    double r = (x - kd * JM_LN2_HI) - kd * JM_LN2_LO;
    /* exp(r) - 1 = r (1 + r/2 (1 + r/3 (1 + ...))), by Horner from the smallest term, then the
     * one rounding of 1 + that. */
    double q = 1;
    for (int i = 14; i >= 2; i--)
        q = 1 + q * r / i;
    double sum = 1 + r * q;
    /* sum * 2^k, in two steps where 2^k alone is not a normal double. */
    if (k > 1023) {
        sum *= 2;
        k--;
    }
    if (k < -1021) {
        sum *= 0x1p-54;
        k += 54;
    }
    return sum * jm_from_bits((uint64_t)(k + 1023) << 52);
}
