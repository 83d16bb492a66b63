// gradkern numerical core: shared definitions.
//
// Everything under csrc/core/ is header-only, usable from host and device code, templated on the
// scalar type T (float or double; half/bfloat16 are computed in float by the kernels), and free of
// exceptions, allocations and host-only calls. Out-of-domain arguments return NaN (torch's convention
// for special functions). Every loop carries an explicit iteration cap.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

#if defined(__CUDACC__) || defined(__HIPCC__)
#define GK_HD __host__ __device__ __forceinline__
#define GK_HD_FORCE __host__ __device__ __forceinline__
#define GK_DEVICE_CODE 1
#else
#define GK_HD inline
// Forced inlining on the host too, for small functions that CPU loops must inline to vectorize (GCC's
// inliner otherwise leaves some out of line in large translation units, and an out-of-line copy is
// compiled for the baseline instruction set: see csrc/cpu/vonmises_block.h).
#if defined(__GNUC__)
#define GK_HD_FORCE inline __attribute__((always_inline))
#else
#define GK_HD_FORCE inline
#endif
#endif

namespace gradkern {
namespace core {

// Numeric traits written out by hand: std::numeric_limits is constexpr but not __device__ without
// --expt-relaxed-constexpr, and the core must compile under plain nvcc.
template <typename T> struct num;
template <> struct num<float> {
  static constexpr float eps = 1.1920928955078125e-07f;     // 2^-23
  static constexpr float min_normal = 1.17549435e-38f;
  static constexpr float max = 3.40282347e+38f;
  static constexpr float log_max = 88.7228391f;             // log(max)
  static constexpr float log_min = -87.3365447f;            // log(min_normal)
  static constexpr int max_iter = 200;                      // paper, appendix B: 200 for float32
};
template <> struct num<double> {
  static constexpr double eps = 2.220446049250313e-16;      // 2^-52
  static constexpr double min_normal = 2.2250738585072014e-308;
  static constexpr double max = 1.7976931348623157e+308;
  static constexpr double log_max = 709.782712893384;
  static constexpr double log_min = -708.3964185322641;
  static constexpr int max_iter = 500;                      // paper, appendix B: 500 for float64
};

// IEEE-754 layout, for the bit-level steps of the branch-free elementary functions (log_pos in
// special.h, the von Mises sampler's exp): bits of 1.0 and of sqrt(1/2) (rounded down), and ln 2 split
// so that k ln2_hi is exact for every exponent k of the type.
template <typename T> struct ieee;
template <> struct ieee<double> {
  typedef uint64_t U;
  static constexpr int mant = 52;
  static constexpr U bias = 1023;
  static constexpr U mant_mask = 0x000FFFFFFFFFFFFFull;
  static constexpr U one_bits = 0x3FF0000000000000ull;
  static constexpr U sqrt_half_bits = 0x3FE6A09E667F3BCDull;
  static constexpr double ln2_hi = 0.693147180369123816490;  // 21 trailing zero bits: k ln2_hi exact
  static constexpr double ln2_lo = 1.90821492927058770002e-10;
};
template <> struct ieee<float> {
  typedef uint32_t U;
  static constexpr int mant = 23;
  static constexpr U bias = 127;
  static constexpr U mant_mask = 0x007FFFFFu;
  static constexpr U one_bits = 0x3F800000u;
  static constexpr U sqrt_half_bits = 0x3F3504F3u;
  static constexpr float ln2_hi = 0.693145751953125f;  // 9 trailing zero bits
  static constexpr float ln2_lo = 1.428606765330187045e-06f;
};
template <typename T> GK_HD_FORCE typename ieee<T>::U to_bits(T x) {
  typename ieee<T>::U u;
  memcpy(&u, &x, sizeof(T));
  return u;
}
template <typename T> GK_HD_FORCE T from_bits(typename ieee<T>::U u) {
  T x;
  memcpy(&x, &u, sizeof(T));
  return x;
}

template <typename T> GK_HD T quiet_nan() { return T(NAN); }
template <typename T> GK_HD T infinity() { return T(INFINITY); }
template <typename T> GK_HD T neg_inf() { return -T(INFINITY); }

template <typename T> struct consts {
  static constexpr T pi = T(3.14159265358979323846264338327950288);
  static constexpr T two_pi = T(6.28318530717958647692528676655900577);
  static constexpr T sqrt_pi = T(1.77245385090551602729816748334114518);
  static constexpr T sqrt_2pi = T(2.50662827463100050241576528481104525);
  static constexpr T log_sqrt_2pi = T(0.918938533204672741780329736405617640);
  static constexpr T sqrt2 = T(1.41421356237309504880168872420969808);
  static constexpr T inv_sqrt2 = T(0.707106781186547524400844362104849039);
  static constexpr T inv_two_pi = T(0.159154943091895335768883763372514362);
  static constexpr T ln2 = T(0.693147180559945309417232121458176568);
  static constexpr T euler_gamma = T(0.577215664901532860606512090082402431);
};

// Thin wrappers so that core code reads the same for float and double on host and device.
GK_HD float gk_exp(float x) { return ::expf(x); }
GK_HD double gk_exp(double x) { return ::exp(x); }
GK_HD float gk_expm1(float x) { return ::expm1f(x); }
GK_HD double gk_expm1(double x) { return ::expm1(x); }
GK_HD float gk_log(float x) { return ::logf(x); }
GK_HD double gk_log(double x) { return ::log(x); }
GK_HD float gk_log1p(float x) { return ::log1pf(x); }
GK_HD double gk_log1p(double x) { return ::log1p(x); }
GK_HD float gk_sqrt(float x) { return ::sqrtf(x); }
GK_HD double gk_sqrt(double x) { return ::sqrt(x); }
GK_HD float gk_pow(float x, float y) { return ::powf(x, y); }
GK_HD double gk_pow(double x, double y) { return ::pow(x, y); }
GK_HD float gk_fabs(float x) { return ::fabsf(x); }
GK_HD double gk_fabs(double x) { return ::fabs(x); }
// x y + z rounded once (the error-free products of csrc/core/ibeta_quad.h; libm's where the CPU lacks FMA).
GK_HD double gk_fma(double x, double y, double z) { return ::fma(x, y, z); }
// The stopping tolerance, relative to their sums, of the series and continued fractions that float32
// evaluates in double and rounds once (the second-order incomplete gamma, the incomplete beta gradients):
// 2^-34 (float's eps / 2^11, so the truncation stays far below the final rounding and the loops stop after
// 25-60% fewer steps than at double's eps, measured with the same maximum error against mpmath); double's
// eps for float64.
template <typename T> GK_HD constexpr double loop_tol() {
  return sizeof(T) == 4 ? 5.820766091346741e-11 : 2.220446049250313e-16;  // 2^-34, 2^-52
}

// Rounds v on its own where the compiler could otherwise contract it into an FMA with the next operation
// (GCC's -ffp-contract=fast decides per context, so an inlined copy and a vectorized copy of one formula
// could round differently). Host only: the CPU's blocked kernels must match the scalar core bit for bit;
// on the device the contraction is free.
template <typename T> GK_HD_FORCE void gk_no_contract(T& v) {
#if !defined(__CUDA_ARCH__) && defined(__GNUC__)
  asm("" : "+m"(v));
#else
  (void)v;
#endif
}
GK_HD float gk_floor(float x) { return ::floorf(x); }
GK_HD double gk_floor(double x) { return ::floor(x); }
GK_HD float gk_sin(float x) { return ::sinf(x); }
GK_HD double gk_sin(double x) { return ::sin(x); }
GK_HD float gk_cos(float x) { return ::cosf(x); }
GK_HD double gk_cos(double x) { return ::cos(x); }
GK_HD float gk_tan(float x) { return ::tanf(x); }
GK_HD double gk_tan(double x) { return ::tan(x); }
GK_HD float gk_atan(float x) { return ::atanf(x); }
GK_HD double gk_atan(double x) { return ::atan(x); }
GK_HD float gk_atan2(float y, float x) { return ::atan2f(y, x); }
GK_HD double gk_atan2(double y, double x) { return ::atan2(y, x); }
GK_HD float gk_erf(float x) { return ::erff(x); }
GK_HD double gk_erf(double x) { return ::erf(x); }
GK_HD float gk_erfc(float x) { return ::erfcf(x); }
GK_HD double gk_erfc(double x) { return ::erfc(x); }
GK_HD float gk_lgamma(float x) { return ::lgammaf(x); }
GK_HD double gk_lgamma(double x) { return ::lgamma(x); }
GK_HD float gk_fmod(float x, float y) { return ::fmodf(x, y); }
GK_HD double gk_fmod(double x, double y) { return ::fmod(x, y); }
template <typename T> GK_HD bool gk_isnan(T x) { return x != x; }
template <typename T> GK_HD bool gk_isfinite(T x) { return (x - x) == (x - x); }
template <typename T> GK_HD T gk_min(T a, T b) { return a < b ? a : b; }
template <typename T> GK_HD T gk_max(T a, T b) { return a > b ? a : b; }

}  // namespace core
}  // namespace gradkern
