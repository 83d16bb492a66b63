// Lane-parallel CPU loops of the truncated Normal's kernels (host only; the quantile for float, half and
// bfloat16 results, the backward for every dtype;
// included by csrc/cpu/truncnorm.cpp, which compiles them once per ISA clone). The formulas are the core's
// (csrc/core/truncnorm.h, csrc/core/normal.h), in double, 4 elements at a time on GNU vectors
// (cpu/vecmath.h): the window, its masses (erfc_nonneg_narrow: 2.2e-10 relative, enough for results rounded
// to float or narrower), the oriented quantile's argument, the fitted normal quantile (both of its branches on
// every lane, blended), the sample; for the backward pass the two phi ratios (exp_split for double results,
// exp_narrow for narrower ones) and the four gradients. A lane whose element needs anything else (an invalid
// window or probability, a window deep in the lower tail, a probability below kTnTinyP, the backward's folded
// exponent, u at an end of the window) is recomputed by the scalar core, so every branch of the core is kept.
//
// Why the quantile only for narrower results: the fitted quantile is within 2.4e-8 of the truth before the
// rounding to float (the double results' Halley step needs erf / erfc / exp to within an ulp, left to ATen's
// kernels), and the vector erfc / exp of narrow results are within 2.2e-10 / 1e-11 relative, far below float's
// half ulp (6e-8). The backward's two exponentials (exp_split's few ulp for double results) scale gradients
// whose double values tolerate that (tests/test_truncated.py compares the batched and one-at-a-time kernels
// within 2 ulp times the window's conditioning). Each element's result depends
// only on its own inputs (the same instructions on every lane; the scalar fallback is decided per element), so
// chunking and thread count never change a bit.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "core/truncnorm.h"
#include "cpu/vecmath.h"

namespace gradkern {
namespace cpu {

namespace tnv {
using vm4::L;
using vm4::select;
using vm4::splat;
using vm4::vd;
using vm4::vi;


// The oriented window of 4 parameter sets (core::tn_window on lanes).
struct Win {
  vd a, b;   // oriented standardized bounds, a + b <= 0
  vi flip;   // mirrored (sign -1)
  vi valid;
};

GK_HD_FORCE Win window(vd loc, vd scale, vd low, vd high) {
  Win w;
  const vd a = (low - loc) / scale, b = (high - loc) / scale;
  w.flip = a + b > 0.0;
  w.a = select(w.flip, -b, a);
  w.b = select(w.flip, -a, b);
  w.valid = (low < high) & (scale > 0.0) & vm4::finite(scale) & vm4::finite(loc);
  return w;
}

// Lanes 0 .. m - 1 of v into a strided array of S, lanes with `slow` set replaced by scalar(l): a contiguous
// float array of 4 full lanes, none slow, is one conversion and one vector store.
template <typename S, typename F>
GK_HD_FORCE void store(char* base, int64_t stride, int64_t i0, int m, vd v, vi slow, bool any_slow, F&& scalar) {
  if constexpr (sizeof(S) == 4 && std::is_floating_point<S>::value) {
    if (m == L && stride == 4 && !any_slow) {
      const vm4::vf f = __builtin_convertvector(v, vm4::vf);
      std::memcpy(base + i0 * 4, &f, sizeof(f));
      return;
    }
  }
  double t[L];
  std::memcpy(t, &v, sizeof(t));
  for (int l = 0; l < m; ++l)
    *reinterpret_cast<S*>(base + (i0 + l) * stride) = static_cast<S>(slow[l] ? scalar(l) : t[l]);
}

// Scalar fallback for one element, the last window's state kept while the parameters repeat (a tensor of
// windows deep in a tail takes this path for every element).
struct Fallback {
  double key[4] = {NAN, NAN, NAN, NAN};
  core::TnState st{};
  double icdf(double p, double loc, double scale, double low, double high, bool polish = false) {
    if (!(loc == key[0] && scale == key[1] && low == key[2] && high == key[3])) {
      st = core::tn_prepare(loc, scale, low, high);
      key[0] = loc, key[1] = scale, key[2] = low, key[3] = high;
    }
    return core::tn_icdf_from(st, p, loc, scale, low, high, polish);
  }
};
// The direct branch of the oriented quantile on lanes, from a window, the probabilities and the window's
// masses (ca = 2 Phi(a), cq = 2 Phi(-|b|)): core::tn_direct_state, tn_oriented_u, tn_direct_quantile_arg and
// the fitted start core::std_normal_icdf_fit (the central fit for q >= 0.1, the tail fits below; both
// branches on every lane, blended). Returns q (0.5 on slow lanes, keeping their arithmetic finite) and the
// fit x of q; lower clear for the kind -1 (x is then negated); slow also set for the lanes the direct
// branch does not take (an invalid or deep window, p outside [0, 1], u at an end, q below kTnTinyP).
struct Fit {
  vd q, x;
  vi lower, slow;
};
GK_HD_FORCE Fit fit_lanes(const Win& w, vd P, vd ca, vd cq, vi slow) {
  Fit f;
  const vi bneg = w.b <= 0.0;
  const vd z2 = select(bneg, cq - ca, (2.0 - ca) - cq);
  const vd u = select(w.flip, 1.0 - P, P);
  const vd pp = 0.5 * (ca + u * z2);
  f.lower = bneg | (pp <= 0.5);
  const vd q = select(f.lower, pp, 0.5 * (cq + (1.0 - u) * z2));
  f.slow = slow | ~(w.valid & (w.b > core::kTnDeep)) | ~((P >= 0.0) & (P <= 1.0)) | (u <= 0.0) | (u >= 1.0) |
           (f.lower & (pp < core::kTnTinyP));
  f.q = select(f.slow, splat(0.5), q);
  f.x = core::icdf_central_poly(f.q - 0.5);
  const vi tail = f.q < 0.1;
  if (vm4::any(tail)) {
    const vd r = vm4::vsqrt(-2.0 * vm4::log_pos(select(tail, f.q, splat(0.5)))), v = 1.0 / r;
    const vi far = tail & (r > 6.0);
    vd t = core::icdf_tail_near_poly(v);
    if (vm4::any(far)) t = select(far, core::icdf_tail_far_poly(v), t);
    f.x = select(tail, t - r, f.x);
  }
  return f;
}
}  // namespace tnv

// truncated_normal_icdf for a result of type S (float, half, bfloat16): data = {out, p, loc, scale, low, high}
// (p of type double when `wide`, else S), byte strides, n elements.
template <typename S>
GK_HD_FORCE void tn_icdf_lanes(char* const* data, const int64_t* strides, int64_t n, bool wide) {
  using namespace tnv;
  const double s2 = core::consts<double>::inv_sqrt2;
  // The masses of the last block whose lanes shared one parameter set (broadcast parameters: one erfc pair
  // per call); a lane's masses depend only on its parameters, so reusing them changes no bit.
  double key[4] = {NAN, NAN, NAN, NAN}, kca = 0.0, kcq = 0.0;
  Fallback fb;
  const vm4::Operand<double> Pw(data[1], strides[1]);
  const vm4::Operand<S> Ps(data[1], strides[1]), Lc(data[2], strides[2]), Sc(data[3], strides[3]),
      Lo(data[4], strides[4]), Hi(data[5], strides[5]);
  for (int64_t i0 = 0; i0 < n; i0 += L) {
    const int m = static_cast<int>(std::min<int64_t>(L, n - i0));
    const vd P = wide ? Pw.get(i0, m) : Ps.get(i0, m);
    const vd lc = Lc.get(i0, m), sc = Sc.get(i0, m), lo = Lo.get(i0, m), hi = Hi.get(i0, m);
    const Win w = window(lc, sc, lo, hi);
    const vi same = (lc == key[0]) & (sc == key[1]) & (lo == key[2]) & (hi == key[3]);
    vd ca, cq;
    if (!vm4::any(~same)) {
      ca = splat(kca);
      cq = splat(kcq);
    } else {
      // core::tn_direct_erfc_args: 2 Phi(a) = erfc(-a / sqrt 2), 2 Phi(-|b|) = erfc(|b| / sqrt 2)
      ca = vm4::erfc_nonneg_narrow(-w.a * s2);  // 2.2e-10 relative: the results are float or narrower
      cq = vm4::erfc_nonneg_narrow(vm4::vabs(w.b) * s2);
      const int t = m - 1;
      key[0] = lc[t], key[1] = sc[t], key[2] = lo[t], key[3] = hi[t];
      kca = ca[t], kcq = cq[t];
    }
    const Fit f = fit_lanes(w, P, ca, cq, vi{});
    const vi slow = f.slow;
    vd x = f.x;
    // core::tn_icdf_finish
    x = select(f.lower, x, -x);
    x = vm4::vmin(vm4::vmax(x, w.a), w.b);
    vd z = lc + sc * (select(w.flip, -x, x));
    z = vm4::vmin(vm4::vmax(z, lo), hi);
    store<S>(data[0], strides[0], i0, m, z, slow, vm4::any(slow),
             [&](int l) { return fb.icdf(P[l], lc[l], sc[l], lo[l], hi[l]); });
  }
}

// truncated_normal_icdf for double results, in three lane-parallel passes over a chunk of n <= 4096 elements
// around ATen's vectorised erfc / erf / exp (the caller, csrc/cpu/truncnorm.cpp, runs those on the buffers):
//   tn_icdf_d_args:   the window of each element and the erfc arguments of its masses (e1, e2; core::
//                     tn_direct_erfc_args), slow[t] = 1 where the element needs the scalar core (invalid or
//                     deep window);
//   tn_icdf_d_fit:    from the masses (ca, cq: erfc(e1), erfc(e2)), the oriented quantile's argument and the
//                     fitted start (core::std_normal_icdf_fit on lanes: both branches, blended), then the
//                     Halley step's arguments: x / sqrt 2 (erf, q >= 0.25) or -x / sqrt 2 (erfc) in h, and
//                     x^2 / 2 (exp) in ex; slow[t] = 1 for the elements the direct inversion does not take
//                     (an invalid probability, u at an end of the window, q below kTnTinyP);
//   tn_icdf_d_finish: the Halley step (core::std_normal_icdf_halley) from c = erf / erfc(h) and e = exp(ex),
//                     z (core::tn_icdf_finish), the scalar core for the slow elements.
// The same arithmetic as the batched ATen path (csrc/cpu/truncnorm.cpp) but for the fitted start, whose
// logarithm is core::log_pos: after the Halley step the result agrees with it within an ulp.
GK_HD_FORCE void tn_icdf_d_args(char* const* data, const int64_t* strides, int64_t i0, int n, double* e1,
                                double* e2, unsigned char* slow) {
  using namespace tnv;
  const vm4::Operand<double> Lc(data[2], strides[2]), Sc(data[3], strides[3]), Lo(data[4], strides[4]),
      Hi(data[5], strides[5]);
  const double s2 = core::consts<double>::inv_sqrt2;
  for (int j = 0; j < n; j += L) {
    const int m = std::min(L, n - j);
    const vd lc = Lc.get(i0 + j, m), sc = Sc.get(i0 + j, m), lo = Lo.get(i0 + j, m), hi = Hi.get(i0 + j, m);
    const Win w = window(lc, sc, lo, hi);
    const vd a1 = -w.a * s2, a2 = vm4::vabs(w.b) * s2;
    const vi bad = ~(w.valid & (w.b > core::kTnDeep));
    for (int l = 0; l < m; ++l) {
      e1[j + l] = bad[l] ? 1.0 : a1[l];  // finite arguments for the batched erfc
      e2[j + l] = bad[l] ? 1.0 : a2[l];
      slow[j + l] = bad[l] != 0;
    }
  }
}

GK_HD_FORCE void tn_icdf_d_fit(char* const* data, const int64_t* strides, int64_t i0, int n,
                               const double* ca_, const double* cq_, unsigned char* slow, unsigned char* upper,
                               double* qv, double* xv, double* h, double* ex) {
  using namespace tnv;
  const vm4::Operand<double> Pw(data[1], strides[1]), Lc(data[2], strides[2]), Sc(data[3], strides[3]),
      Lo(data[4], strides[4]), Hi(data[5], strides[5]);
  const double s2 = core::consts<double>::inv_sqrt2;
  for (int j = 0; j < n; j += L) {
    const int m = std::min(L, n - j);
    const vd P = Pw.get(i0 + j, m);
    const vd lc = Lc.get(i0 + j, m), sc = Sc.get(i0 + j, m), lo = Lo.get(i0 + j, m), hi = Hi.get(i0 + j, m);
    const Win w = window(lc, sc, lo, hi);
    vd ca, cq;
    vi sl;
    for (int l = 0; l < L; ++l) {
      const int t = j + (l < m ? l : 0);
      ca[l] = ca_[t];
      cq[l] = cq_[t];
      sl[l] = slow[t] ? -1 : 0;
    }
    const Fit f = fit_lanes(w, P, ca, cq, sl);
    const vd qs = f.q, x = f.x;
    const vd hx = select(qs >= 0.25, x * s2, -x * s2);
    const vd e = 0.5 * x * x;
    for (int l = 0; l < m; ++l) {
      slow[j + l] = f.slow[l] != 0;
      upper[j + l] = f.lower[l] == 0;  // tn_direct_quantile_arg's kind -1: x = -(the quantile of q)
      qv[j + l] = qs[l];
      xv[j + l] = x[l];
      h[j + l] = hx[l];
      ex[j + l] = e[l];
    }
  }
}

GK_HD_FORCE void tn_icdf_d_finish(char* const* data, const int64_t* strides, int64_t i0, int n, const double* qv,
                                  const double* xv, const double* c, const double* e, const unsigned char* slow,
                                  const unsigned char* upper) {
  using namespace tnv;
  const vm4::Operand<double> Pw(data[1], strides[1]), Lc(data[2], strides[2]), Sc(data[3], strides[3]),
      Lo(data[4], strides[4]), Hi(data[5], strides[5]);
  Fallback fb;
  for (int j = 0; j < n; j += L) {
    const int m = std::min(L, n - j);
    const vd lc = Lc.get(i0 + j, m), sc = Sc.get(i0 + j, m), lo = Lo.get(i0 + j, m), hi = Hi.get(i0 + j, m);
    const Win w = window(lc, sc, lo, hi);
    vd q, x0, cv, ev;
    vi neg;
    for (int l = 0; l < L; ++l) {
      const int t = j + (l < m ? l : 0);
      q[l] = qv[t];
      x0[l] = xv[t];
      cv[l] = c[t];
      ev[l] = e[t];
      neg[l] = upper[t] ? -1 : 0;
    }
    // core::std_normal_icdf_halley on the fitted quantile x0 of q, then the kind's sign
    const vd resid = select(q >= 0.25, 0.5 * cv - (q - 0.5), 0.5 * cv - q);
    const vd d = resid * core::consts<double>::sqrt_2pi * ev;
    const vd x1 = x0 - d / (1.0 + 0.5 * x0 * d);
    vd x = select(neg, -x1, x1);
    x = vm4::vmin(vm4::vmax(x, w.a), w.b);
    vd z = lc + sc * (select(w.flip, -x, x));
    z = vm4::vmin(vm4::vmax(z, lo), hi);
    double zt[L];
    std::memcpy(zt, &z, sizeof(zt));
    for (int l = 0; l < m; ++l) {
      const int64_t i = i0 + j + l;
      double zl = zt[l];
      if (slow[j + l]) {
        const double p = *reinterpret_cast<const double*>(data[1] + i * strides[1]);
        zl = fb.icdf(p, lc[l], sc[l], lo[l], hi[l], /*polish=*/true);
      }
      *reinterpret_cast<double*>(data[0] + i * strides[0]) = zl;
    }
  }
}

// truncated_normal_backward for a result of type S: data = {o0, o1, o2, o3, grad, z, p, loc, scale, low, high}
// (p of type double when `wide`). core::tn_backward_args / tn_backward_from on lanes; the scalar core for
// invalid elements and for the far side of a long window, where log F is folded into the exponent.
template <typename S>
GK_HD_FORCE void tn_backward_lanes(char* const* data, const int64_t* strides, int64_t n, bool wide) {
  using namespace tnv;
  const vm4::Operand<double> Pw(data[6], strides[6]);
  const vm4::Operand<S> G(data[4], strides[4]), Z(data[5], strides[5]), Ps(data[6], strides[6]),
      Lc(data[7], strides[7]), Sc(data[8], strides[8]), Lo(data[9], strides[9]), Hi(data[10], strides[10]);
  for (int64_t i0 = 0; i0 < n; i0 += L) {
    const int m = static_cast<int>(std::min<int64_t>(L, n - i0));
    const vd g = G.get(i0, m), zz = Z.get(i0, m), P = wide ? Pw.get(i0, m) : Ps.get(i0, m);
    const vd lc = Lc.get(i0, m), sc = Sc.get(i0, m), lo = Lo.get(i0, m), hi = Hi.get(i0, m);
    const Win w = window(lc, sc, lo, hi);
    const vd sign = select(w.flip, splat(-1.0), splat(1.0));
    const vd x0 = sign * (zz - lc) / sc;
    const vi ok = w.valid & (x0 == x0) & (P >= 0.0) & (P <= 1.0);
    const vd x = vm4::vmin(vm4::vmax(x0, w.a), w.b);
    const vd f = select(w.flip, 1.0 - P, P), f1 = select(w.flip, P, 1.0 - P);
    const vd la = 0.5 * (x - w.a) * (x + w.a);
    const vd eb = 0.5 * (x - w.b) * (x + w.b);
    const vi slow = ~ok | ~(eb < 700.0);
    const vd zero = splat(0.0);
    // double results: exp_split (a few ulp); narrower ones: exp_narrow (1e-11 relative, below their half ulp)
    const vd la0 = select(slow, zero, la), eb0 = select(slow, zero, eb);
    vd ea, ebx;
    if constexpr (sizeof(S) >= 8) {
      ea = vm4::exp_split(la0, zero);
      ebx = vm4::exp_split(eb0, zero);
    } else {
      ea = vm4::exp_narrow(la0);
      ebx = vm4::exp_narrow(eb0);
    }
    const vd da = ea * f1, db = ebx * f;
    const vd ta = select(vm4::finite(w.a), w.a * da, zero), tb = select(vm4::finite(w.b), w.b * db, zero);
    const vd o0 = g * (1.0 - da - db);
    const vd o1 = g * (sign * (x - ta - tb));
    const vd o2 = g * select(w.flip, db, da);
    const vd o3 = g * select(w.flip, da, db);
    if (!vm4::any(slow)) {
      const vd os[4] = {o0, o1, o2, o3};
      for (int j = 0; j < 4; ++j) store<S>(data[j], strides[j], i0, m, os[j], slow, false, [](int) { return 0.0; });
    } else {
      for (int l = 0; l < m; ++l) {
        double o[4] = {o0[l], o1[l], o2[l], o3[l]};
        if (slow[l]) core::truncated_normal_backward<double, double>(g[l], zz[l], P[l], lc[l], sc[l], lo[l], hi[l], o);
        for (int j = 0; j < 4; ++j) *reinterpret_cast<S*>(data[j] + (i0 + l) * strides[j]) = static_cast<S>(o[j]);
      }
    }
  }
}

}  // namespace cpu
}  // namespace gradkern
