// Branch-free elementary functions in double on GNU vectors of 4 lanes, for CPU loops that process 4
// elements at a time (host only: the truncated Normal's kernels, cpu/truncnorm_block.h; the Dirichlet sampler's
// normalisation, cpu/gamma_sampler.cpp; the second-order Gamma blocks' log, cpu/gamma_block.h). Every lane
// runs the same instructions, so an element's result depends only on its own inputs, never on its lane or
// its neighbours (hence not on chunking or thread count). Compiled once per ISA clone (cpu/host.h): a
// 32-byte vector is one AVX2 register (two SSE2 ones). Not 8 lanes: GCC 12 lowers the comparisons of 64-byte
// vectors lane by lane inside target-attribute clones (the inlined helpers are lowered for the baseline ISA
// first), which made the kernel 2-3x slower than on 4 lanes.
//
// exp_split(hi, lo)   e^(hi + lo) for hi <= 700, |lo| << 1; 0 below hi = -708 (no subnormal results).
// erfc_nonneg(t)      erfc(t) for t >= 0 (+inf gives 0), within 3.5 ulp (relative; measured against mpmath).
// log_pos(x)          log x for normal x > 0 (core::log_pos on lanes).
#pragma once

#include <cstdint>
#include <cstring>
#include <type_traits>

#include "core/common.h"

namespace gradkern {
namespace cpu {
namespace vm4 {

typedef double vd __attribute__((vector_size(32)));
typedef int64_t vi __attribute__((vector_size(32)));
typedef uint64_t vu __attribute__((vector_size(32)));
typedef float vf __attribute__((vector_size(16)));
constexpr int L = 4;

GK_HD_FORCE vd splat(double v) { return vd{v, v, v, v}; }
GK_HD_FORCE vu bits(vd v) {
  vu b;
  std::memcpy(&b, &v, sizeof(b));
  return b;
}
GK_HD_FORCE vd from_bits(vu b) {
  vd v;
  std::memcpy(&v, &b, sizeof(v));
  return v;
}
GK_HD_FORCE vd vabs(vd v) { return from_bits(bits(v) & (vu{} + 0x7FFFFFFFFFFFFFFFull)); }
// Lane-wise m ? a : b for a mask of comparison results (lanes all ones or all zeros), as bit operations: GCC
// lowers the vector conditional operator on 64-byte vectors to a branch per lane.
GK_HD_FORCE vd select(vi m, vd a, vd b) {
  const vu k = (vu)m;
  return from_bits((bits(a) & k) | (bits(b) & ~k));
}
// Whether any lane of a mask is set: an OR tree over lane shuffles (a loop over the lanes extracts each one).
GK_HD_FORCE bool any(vi m) {
  m |= __builtin_shuffle(m, vi{2, 3, 0, 1});
  m |= __builtin_shuffle(m, vi{1, 0, 3, 2});
  return m[0] != 0;
}
GK_HD_FORCE vd vmin(vd a, vd b) { return select(a < b, a, b); }
GK_HD_FORCE vd vmax(vd a, vd b) { return select(a > b, a, b); }
GK_HD_FORCE vd vsqrt(vd x) {
  vd r;
  for (int l = 0; l < L; ++l) r[l] = __builtin_sqrt(x[l]);  // sqrtsd / vsqrtpd (-fno-math-errno)
  return r;
}
// isfinite on lanes: the exponent field is not all ones.
GK_HD_FORCE vi finite(vd x) { return (vi)((bits(x) & 0x7FF0000000000000ull) != 0x7FF0000000000000ull); }

// One strided operand of a loop (TensorIterator data and byte stride) read 4 lanes at a time as double: a
// broadcast operand (stride 0) is read once, a contiguous float or double operand is one vector load per full
// block, anything else lane by lane, lanes from m on repeating lane 0 (so that they compute valid values,
// never stored). Writing single lanes of a vector in memory and reading it back whole stalls the load (no
// store forwarding): avoided where it can be.
template <typename S> struct Operand {
  const char* base;
  int64_t stride;
  int kind;  // 0 broadcast, 1 contiguous float / double, 2 strided
  vd value;  // the broadcast value
  Operand(const char* b, int64_t s) : base(b), stride(s) {
    constexpr bool fd = std::is_floating_point<S>::value;
    kind = s == 0 ? 0 : (fd && s == int64_t(sizeof(S)) ? 1 : 2);
    value = splat(kind == 0 ? static_cast<double>(*reinterpret_cast<const S*>(b)) : 0.0);
  }
  GK_HD_FORCE vd get(int64_t i0, int m) const {
    if (kind == 0) return value;
    if constexpr (std::is_floating_point<S>::value) {
      if (kind == 1 && m == L) {
        if constexpr (sizeof(S) == 4) {
          vf f;
          std::memcpy(&f, base + i0 * 4, sizeof(f));
          return __builtin_convertvector(f, vd);
        } else {
          vd d;
          std::memcpy(&d, base + i0 * 8, sizeof(d));
          return d;
        }
      }
    }
    double t[L];
    for (int l = 0; l < L; ++l)
      t[l] = static_cast<double>(*reinterpret_cast<const S*>(base + (i0 + (l < m ? l : 0)) * stride));
    vd v;
    std::memcpy(&v, t, sizeof(v));
    return v;
  }
};

// The polynomial c[0] y^(N-1) + ... + c[N-1] in four interleaved parts, p(y) = (P0 + y P1) + y^2 (P2 + y P3)
// with P_r in y^4 (a_k the coefficient of y^k, c[N-1-k]; P_r holds a_r, a_(r+4), ...): a quarter of Horner's
// chain of dependent multiply-adds, for the long polynomials whose latency would otherwise bound the loop (erfc's 23 terms).
template <int N> GK_HD_FORCE vd poly4(const double (&c)[N], vd y) {
  const vd y2 = y * y, y4 = y2 * y2;
  vd p[4];
  for (int r = 0; r < 4; ++r) {
    int k = r + 4 * ((N - 1 - r) / 4);  // the highest power of this part
    p[r] = r <= N - 1 ? splat(c[N - 1 - k]) : splat(0.0);
    for (k -= 4; k >= r; k -= 4) p[r] = p[r] * y4 + c[N - 1 - k];
  }
  return (p[0] + y * p[1]) + y2 * (p[2] + y * p[3]);
}

// core::log_pos on lanes (the same reduction and series: log(1 + f) = 2 atanh(f / (2 + f))), k0 per lane added
// to the exponent (log x + k0 ln 2).
GK_HD_FORCE vd log_pos(vd x, vi k0 = vi{}) {
  typedef core::ieee<double> F;
  vu u = bits(x) + (F::one_bits - F::sqrt_half_bits);
  const vi k = (vi)(u >> F::mant) - static_cast<int64_t>(F::bias) + k0;
  const vd f = from_bits((u & F::mant_mask) + F::sqrt_half_bits) - 1.0;
  const vd s = f / (2.0 + f);
  const vd z = s * s;
  vd R = splat(2.0 / 21);
  R = R * z + 2.0 / 19; R = R * z + 2.0 / 17; R = R * z + 2.0 / 15; R = R * z + 2.0 / 13;
  R = R * z + 2.0 / 11; R = R * z + 2.0 / 9; R = R * z + 2.0 / 7; R = R * z + 2.0 / 5;
  R = R * z + 2.0 / 3;
  R *= z;
  const vd hfsq = 0.5 * f * f;
  // double(k) through the bits of 1.5 2^52 + k (AVX2 has no int64 -> double conversion)
  const vd dk = from_bits((vu)(k + 0x4338000000000000ll)) - 6755399441055744.0;
  return dk * F::ln2_hi + (f - (hfsq - (s * (hfsq + R) + dk * F::ln2_lo)));
}

// e^(hi + lo): hi = n ln2 + r0 (n the nearest integer to hi / ln2, by the magic-number add; n ln2_hi is exact
// and hi - n ln2_hi too), r = r0 + lo, e^r by its Taylor polynomial c (highest degree first; |r| <= ln2 / 2 +
// |lo|), 2^n written into the exponent field. exp_split's degree 13 truncates below 1e-17; the split argument
// serves erfc_nonneg, whose exponent -t^2 is exact only as a sum of two doubles.
template <int N> GK_HD_FORCE vd exp_split_with(const double (&c)[N], vd hi, vd lo) {
  typedef core::ieee<double> F;
  constexpr double magic = 6755399441055744.0;  // 1.5 * 2^52
  const vi under = hi < -708.0;
  const vd y = select(under, splat(-708.0), hi);
  const vd t = y * 1.44269504088896340736 + magic;
  const vd n = t - magic;
  const vd r = ((y - n * F::ln2_hi) - n * F::ln2_lo) + lo;
  const vu e = (bits(t) - bits(splat(magic)) + F::bias) << F::mant;
  const vd v = poly4(c, r) * from_bits(e);
  return select(under, splat(0.0), v);
}
GK_HD_FORCE vd exp_split(vd hi, vd lo) {
  static constexpr double c[14] = {1.0 / 6227020800.0, 1.0 / 479001600.0, 1.0 / 39916800.0, 1.0 / 3628800.0,
                                   1.0 / 362880.0,     1.0 / 40320.0,     1.0 / 5040.0,     1.0 / 720.0,
                                   1.0 / 120.0,        1.0 / 24.0,        1.0 / 6.0,        0.5,
                                   1.0,                1.0};
  return exp_split_with(c, hi, lo);
}
// e^x for results rounded to float or narrower: degree 9 (truncation below 1e-11 relative, far below float's
// half ulp of 6e-8), four fewer terms than exp_split.
GK_HD_FORCE vd exp_narrow(vd x) {
  static constexpr double c[10] = {1.0 / 362880.0, 1.0 / 40320.0, 1.0 / 5040.0, 1.0 / 720.0, 1.0 / 120.0,
                                   1.0 / 24.0,     1.0 / 6.0,     0.5,          1.0,         1.0};
  return exp_split_with(c, x, splat(0.0));
}

// The shared part of erfc_nonneg and erfc_nonneg_narrow: t capped at 27.5, the fit's argument
// y = (t - 3) / (t + 3) and the factor 1 / (1 + 2 t), both from the one division d = 1 / ((t + 3)(1 + 2 t)).
struct ErfcArgs {
  vd t, y, w;  // w = 1 / (1 + 2 t)
};
GK_HD_FORCE ErfcArgs erfc_args(vd t) {
  t = vmin(t, splat(27.5));
  const vd tp = t + 3.0, t2 = 1.0 + 2.0 * t;
  const vd d = 1.0 / (tp * t2);
  return ErfcArgs{t, (t - 3.0) * t2 * d, tp * d};
}

// erfc(t), t >= 0: erfc(t) = e^(-t^2) h(y) / (1 + 2 t), y = (t - 3) / (t + 3), h a degree-22 polynomial fitted
// by tools/gen_erfcx_fit.py (relative error 5.6e-16 in double Horner), evaluated by poly4. e^(-t^2) from t = th + tl with th's low
// 27 bits cleared: th^2 is exact, t^2 = th^2 + tl (t + th). t is capped at 27.5 (erfc(27.5) = 3e-330: 0 in
// double, which exp_split gives for t^2 > 708), which also keeps +inf finite inside.
GK_HD_FORCE vd erfc_nonneg(vd t) {
  static constexpr double kFit[23] = {
      -3.3911975149641994e-09, -7.639805706660184e-09, 2.900096033455807e-08, 8.764763429942915e-08,
      -1.232972365581405e-07,  -5.963735757072212e-07, 3.4040811203344006e-07, 3.4542640815449015e-06,
      -7.218910913909693e-07,  -2.0089974601937562e-05, 4.945791788878783e-06, 0.00012509529969692863,
      -0.000105158888745708,   -0.000779831276440303,  0.0018886902217603342, 0.0025293916666211625,
      -0.02377051490712486,    0.06830802735644051,    -0.11927366341575335,  0.129645158702281,
      -0.04756229435344576,    -0.13562110612457573,   1.2530080582697296,
  };
  const ErfcArgs e = erfc_args(t);
  const vd th = from_bits(bits(e.t) & (vu{} + ~((uint64_t(1) << 27) - 1)));
  const vd tl = e.t - th;
  return exp_split(-(th * th), -(tl * (e.t + th))) * poly4(kFit, e.y) * e.w;
}

// erfc(t), t >= 0, for results rounded to float or narrower (the truncated Normal's window masses there):
// erfc_nonneg's form with h of degree 13 (tools/gen_erfcx_fit.py 13: 2.1e-10 relative), e^(-t^2) by exp_narrow
// from t^2 rounded once (8e-14 relative at the cap): 2.2e-10 relative in all, 3.6e5 times float's half ulp
// below it, and about 40% fewer operations.
GK_HD_FORCE vd erfc_nonneg_narrow(vd t) {
  static constexpr double kFitNarrow[14] = {
      -1.1481641468961008e-05, 3.858826870501334e-06, 0.00011462995701111817, -0.00010412154102442731,
      -0.000773109938915649,   0.0018881023957935195, 0.0025271155205983213,  -0.02377032914854471,
      0.06830839969281499,     -0.11927369264668239,  0.12964513564845567,    -0.0475622925783465,
      -0.13562110588976525,    1.253008058251719,
  };
  const ErfcArgs e = erfc_args(t);
  return exp_narrow(-(e.t * e.t)) * poly4(kFitNarrow, e.y) * e.w;
}

}  // namespace vm4
}  // namespace cpu
}  // namespace gradkern
