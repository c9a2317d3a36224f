/* interpose/jemath.c: the exp, log and round the private jemalloc gets instead of libm's, held
 * to libm's results (this test links libm; libzeropool.so does not). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

double zp_je_libm_exp(double x);
double zp_je_libm_log(double x);
double zp_je_libm_round(double x);

/* Distance in units in the last place between two finite doubles of the same sign. */
static uint64_t ulps(double a, double b)
{
    int64_t ia, ib;
    memcpy(&ia, &a, sizeof a);
    memcpy(&ib, &b, sizeof b);
    return ia > ib ? (uint64_t)(ia - ib) : (uint64_t)(ib - ia);
}

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static double uniform(double lo, double hi)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return lo + (hi - lo) * ((double)(rng >> 11) * 0x1p-53);
}

Test(jemath, round_matches_libm)
{
    static const double fixed[] = {0.0, -0.0, 0.5, -0.5, 1.5, 2.5, -2.5, 0.49999999999999994,
                                   -0.49999999999999994, 4503599627370495.5, 0x1p52, 1e300,
                                   -1e300, INFINITY, -INFINITY};
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++) {
        double a = zp_je_libm_round(fixed[i]), b = round(fixed[i]);
        cr_assert(memcmp(&a, &b, sizeof a) == 0, "round(%a): %a, libm %a", fixed[i], a, b);
    }
    cr_assert(isnan(zp_je_libm_round(NAN)));
    for (int i = 0; i < 100000; i++) {
        double x = uniform(-1e6, 1e6);
        cr_assert_eq(zp_je_libm_round(x), round(x), "round(%a)", x);
    }
}

Test(jemath, log_within_2_ulps)
{
    for (int i = 0; i < 200000; i++) {
        double x = exp2(uniform(-1074, 1023.99)); /* subnormals to DBL_MAX */
        double a = zp_je_libm_log(x), b = log(x);
        cr_assert(ulps(a, b) <= 2 || fabs(a - b) < 1e-300, "log(%a): %a, libm %a", x, a, b);
    }
    for (int i = 0; i < 100000; i++) { /* near 1, where log is small and cancellation bites */
        double x = uniform(0.7, 1.4);
        double a = zp_je_libm_log(x), b = log(x);
        cr_assert(ulps(a, b) <= 2 || fabs(a - b) < 1e-300, "log(%a): %a, libm %a", x, a, b);
    }
    cr_assert_eq(zp_je_libm_log(1.0), 0.0);
    cr_assert(isinf(zp_je_libm_log(0.0)) && zp_je_libm_log(0.0) < 0);
    cr_assert(isnan(zp_je_libm_log(-1.0)));
    cr_assert(isnan(zp_je_libm_log(NAN)));
    cr_assert(isinf(zp_je_libm_log(INFINITY)));
}

Test(jemath, exp_within_2_ulps)
{
    for (int i = 0; i < 200000; i++) {
        double x = uniform(-708, 709.7);
        double a = zp_je_libm_exp(x), b = exp(x);
        cr_assert(ulps(a, b) <= 2, "exp(%a): %a, libm %a", x, a, b);
    }
    for (int i = 0; i < 10000; i++) { /* results in the subnormal range: absolute error */
        double x = uniform(-745, -708.5);
        double a = zp_je_libm_exp(x), b = exp(x);
        cr_assert(ulps(a, b) <= 2, "exp(%a): %a, libm %a", x, a, b);
    }
    cr_assert_eq(zp_je_libm_exp(0.0), 1.0);
    cr_assert(isinf(zp_je_libm_exp(710.0)));
    cr_assert_eq(zp_je_libm_exp(-746.0), 0.0);
    cr_assert(isnan(zp_je_libm_exp(NAN)));
}
