// CPU kernels of the truncated Normal's ops (csrc/core/truncnorm.h through ops/truncnorm.h): strided
// TensorIterator loops (broadcasting, type checks, threads). The core works in double for float and double;
// half and bfloat16 go through float.
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/TensorIterator.h>
#include <ATen/ops/from_blob.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <tuple>
#include <type_traits>
#include <vector>

#include "cpu/host.h"
#include "cpu/truncnorm_block.h"
#include "ops/tensor_checks.h"
#include "ops/truncnorm.h"

namespace gradkern {
namespace {

// The lane-parallel loops of float, half and bfloat16 results (cpu/truncnorm_block.h), once per ISA clone
// (cpu/host.h picks one per process). data and byte strides as the TensorIterator's; `wide`: p is double.
using LanesFn = void (*)(char* const*, const int64_t*, int64_t, bool);
#define GK_TN_LANES(SUFFIX, ATTR)                                                                     \
  template <typename S> ATTR void icdf_lanes_##SUFFIX(char* const* d, const int64_t* s, int64_t n, bool w) { \
    cpu::tn_icdf_lanes<S>(d, s, n, w);                                                                \
  }                                                                                                   \
  template <typename S> ATTR void backward_lanes_##SUFFIX(char* const* d, const int64_t* s, int64_t n, bool w) { \
    cpu::tn_backward_lanes<S>(d, s, n, w);                                                            \
  }
#ifdef GK_HAVE_ISA_CLONES
GK_TN_LANES(avx2, GK_TARGET_AVX2 __attribute__((flatten)))
GK_TN_LANES(avx512, GK_TARGET_AVX512 __attribute__((flatten)))
#endif
#undef GK_TN_LANES

// The double quantile's lane-parallel passes (cpu/truncnorm_block.h tn_icdf_d_*), once per ISA clone; the
// batched driver (IcdfLoop::lanes_double) runs ATen's erfc / erf / exp between them.
struct DoublePasses {
  void (*args)(char* const*, const int64_t*, int64_t, int, double*, double*, unsigned char*);
  void (*fit)(char* const*, const int64_t*, int64_t, int, const double*, const double*, unsigned char*,
              unsigned char*, double*, double*, double*, double*);
  void (*finish)(char* const*, const int64_t*, int64_t, int, const double*, const double*, const double*,
                 const double*, const unsigned char*, const unsigned char*);
};
#define GK_TN_DPASSES(SUFFIX, ATTR)                                                                        \
  ATTR void d_args_##SUFFIX(char* const* d, const int64_t* s, int64_t i0, int n, double* e1, double* e2,   \
                            unsigned char* slow) {                                                         \
    cpu::tn_icdf_d_args(d, s, i0, n, e1, e2, slow);                                                        \
  }                                                                                                        \
  ATTR void d_fit_##SUFFIX(char* const* d, const int64_t* s, int64_t i0, int n, const double* ca,          \
                           const double* cq, unsigned char* slow, unsigned char* up, double* q, double* x,  \
                           double* h, double* ex) {                                                        \
    cpu::tn_icdf_d_fit(d, s, i0, n, ca, cq, slow, up, q, x, h, ex);                                        \
  }                                                                                                        \
  ATTR void d_finish_##SUFFIX(char* const* d, const int64_t* s, int64_t i0, int n, const double* q,        \
                              const double* x, const double* c, const double* e, const unsigned char* slow, \
                              const unsigned char* up) {                                                   \
    cpu::tn_icdf_d_finish(d, s, i0, n, q, x, c, e, slow, up);                                              \
  }
#ifdef GK_HAVE_ISA_CLONES
GK_TN_DPASSES(avx2, GK_TARGET_AVX2 __attribute__((flatten)))
GK_TN_DPASSES(avx512, GK_TARGET_AVX512 __attribute__((flatten)))
#endif
#undef GK_TN_DPASSES

// The passes for this CPU, or nullptr (no AVX2: the batched path's scalar passes).
const DoublePasses* pick_double_passes() {
#ifdef GK_HAVE_ISA_CLONES
  static const DoublePasses avx2{&d_args_avx2, &d_fit_avx2, &d_finish_avx2};
  static const DoublePasses avx512{&d_args_avx512, &d_fit_avx512, &d_finish_avx512};
  return cpu::for_isa<const DoublePasses*>(&avx512, &avx2, nullptr);
#else
  return nullptr;
#endif
}

// The quantile's loop for float, half and bfloat16 results, the backward's for every dtype; nullptr for the
// quantile of a double result (the batched ATen path below: its Halley step needs erf / erfc within an ulp,
// the vector erfc is within 3.5) and on CPUs without AVX2 (the 4-lane vectors split into SSE2 halves there,
// with comparisons lane by lane: 3-5x slower than the batched ATen path, which stays).
template <typename S> LanesFn pick_lanes(bool backward) {
#ifdef GK_HAVE_ISA_CLONES
  if (sizeof(S) < 8 || backward)
    return backward ? cpu::for_isa<LanesFn>(&backward_lanes_avx512<S>, &backward_lanes_avx2<S>, nullptr)
                    : cpu::for_isa<LanesFn>(&icdf_lanes_avx512<S>, &icdf_lanes_avx2<S>, nullptr);
#endif
  (void)backward;
  return nullptr;
}

// Grain: 20-100 ns per element (erfc, exp and a polynomial in double).
constexpr int64_t kGrain = 2048;

template <typename S, typename A>
inline A load(char* const* data, const int64_t* strides, int k, int64_t i) {
  return static_cast<A>(*reinterpret_cast<const S*>(data[k] + i * strides[k]));
}

// p (the probabilities) may be float64 while the parameters are float32 (ops/tensor_checks.h nary_iter's
// `wide` input): read as double either way.
template <typename S>
inline double load_p(char* const* data, const int64_t* strides, int k, int64_t i, bool wide) {
  return wide ? *reinterpret_cast<const double*>(data[k] + i * strides[k]) : load<S, double>(data, strides, k, i);
}

// The quantile kernel's loop. Evaluated one element at a time through libm, the window's masses (two erfc
// per distinct parameter set) dominate it when the parameters vary per element (a loc per sample), and the
// Halley step of a double result (an erf or erfc and an exp per element) comes next. Iterations of at least
// kBatchMin elements are therefore done in chunks of kChunk, in passes over the core's split functions,
// with those three elementary functions evaluated by ATen's vectorised kernels (erfc_, erf_, exp_) on flat
// buffers, a few calls per chunk:
//   1. each distinct window (core::tn_window) and the erfc arguments of its masses
//      (core::tn_direct_erfc_args: the same arguments and branches as core::tn_prepare); consecutive
//      elements with equal parameters share one window (broadcast parameters: one erfc pair in all);
//   2. the masses (erfc_), the windows' states (core::tn_direct_state);
//   3. per element, the normal quantile's argument (core::tn_direct_quantile_arg) and its fitted start
//      (core::std_normal_icdf_central / _tail, the elements sorted by branch first; libm's log for
//      p < 0.1), and for a double result the Halley step's erf / erfc and exp arguments;
//   4. those (erf_, erfc_, exp_), the step (core::std_normal_icdf_halley), z (core::tn_icdf_finish).
// Windows off the direct branch (deep in the lower tail, in log space) and invalid ones go through
// core::tn_prepare / tn_icdf_from in pass 1, as do the rare elements inverted in log space in pass 3. The
// arithmetic is the one-at-a-time loop's; only the erfc / erf / exp implementation differs (ATen's, within
// 1.5 ulp of the truth in double, where libm's is within 1).
constexpr int64_t kChunk = 4096;
constexpr int64_t kBatchMin = 64;  // below this the ATen calls' fixed cost (~1-2 us each) would dominate

// The path is chosen once per call, from the iteration's total size, never per loop invocation: a thread's
// range may start or end inside a row, and the pieces must take the same path (and so the same erfc / erf /
// exp, ATen's or libm's, which differ in the last bits) whatever the thread count. Iterations of fewer than
// kBatchMin elements never split (the grain is larger). ATen's own kernels give each element the same bits
// wherever it lies in a buffer (tails use the vector code too), so chunk boundaries do not matter either.
//
// Rows2d runs such a 1-D loop over the iterator's 2-D blocks: long rows one at a time, short rows (a batch of
// parameters broadcast against sample dimensions: the parameters' stride 0 along the samples stops the
// iterator from coalescing the dimensions) gathered into contiguous chunks of up to kChunk elements, the
// outputs scattered back, so that the batched path is not paid per short row.
template <typename Loop1d>
struct Rows2d {
  Loop1d loop;
  int nt, nout;          // tensors (outputs first) and outputs
  int64_t esz[11];       // element sizes in bytes

  static void copy(char* dst, const char* src, int64_t n) {
    switch (n) {  // element sizes are 2, 4 or 8 bytes: fixed-size copies, not a memcpy call per element
      case 8: *reinterpret_cast<uint64_t*>(dst) = *reinterpret_cast<const uint64_t*>(src); break;
      case 4: *reinterpret_cast<uint32_t*>(dst) = *reinterpret_cast<const uint32_t*>(src); break;
      default: *reinterpret_cast<uint16_t*>(dst) = *reinterpret_cast<const uint16_t*>(src); break;
    }
  }

  void operator()(char** data, const int64_t* strides, int64_t size0, int64_t size1) const {
    char* ptrs[11];
    if (size1 == 1 || size0 >= kChunk) {
      for (int64_t r = 0; r < size1; ++r) {
        for (int k = 0; k < nt; ++k) ptrs[k] = data[k] + r * strides[nt + k];
        loop(ptrs, strides, size0);
      }
      return;
    }
    const int64_t G = kChunk / size0;  // rows per chunk
    std::vector<char> buf[11];
    int64_t bstr[11];
    for (int k = 0; k < nt; ++k) {
      buf[k].resize(size_t(G * size0 * esz[k]));
      ptrs[k] = buf[k].data();
      bstr[k] = esz[k];
    }
    for (int64_t r0 = 0; r0 < size1; r0 += G) {
      const int64_t g = std::min(G, size1 - r0);
      for (int k = nout; k < nt; ++k) {
        char* dst = ptrs[k];
        for (int64_t r = 0; r < g; ++r) {
          const char* row = data[k] + (r0 + r) * strides[nt + k];
          for (int64_t i = 0; i < size0; ++i, dst += esz[k]) copy(dst, row + i * strides[k], esz[k]);
        }
      }
      loop(ptrs, bstr, g * size0);
      for (int k = 0; k < nout; ++k) {
        const char* src = ptrs[k];
        for (int64_t r = 0; r < g; ++r) {
          char* row = data[k] + (r0 + r) * strides[nt + k];
          for (int64_t i = 0; i < size0; ++i, src += esz[k]) copy(row + i * strides[k], src, esz[k]);
        }
      }
    }
  }
};

template <typename Loop1d>
void for_each_rows(at::TensorIterator& iter, const Loop1d& loop) {
  Rows2d<Loop1d> rows{loop, iter.ntensors(), iter.noutputs(), {}};
  for (int k = 0; k < iter.ntensors(); ++k) rows.esz[k] = iter.element_size(k);
  iter.for_each(rows, kGrain);
}

template <typename scalar_t>
struct IcdfLoop {
  bool wide;
  bool polish;
  bool batch;  // iter.numel() >= kBatchMin (see above)
  LanesFn lanes;  // the lane-parallel loop of a float, half or bfloat16 result (batch only), else nullptr
  const DoublePasses* dp;  // the lane-parallel passes of a double result (batch only), else nullptr

  static void params(char* const* data, const int64_t* strides, int64_t i, double* prm) {
    for (int k = 0; k < 4; ++k) prm[k] = load<scalar_t, double>(data, strides, 2 + k, i);
  }
  static bool same(const double* a, const double* b) {
    return a[0] == b[0] && a[1] == b[1] && a[2] == b[2] && a[3] == b[3];  // false for NaN: recomputed
  }
  static void put(char* const* data, const int64_t* strides, int64_t i, double z) {
    *reinterpret_cast<scalar_t*>(data[0] + i * strides[0]) = static_cast<scalar_t>(z);
  }
  double p_at(char* const* data, const int64_t* strides, int64_t i) const {
    return load_p<scalar_t>(data, strides, 1, i, wide);
  }

  // One element at a time, the window's state cached while the parameters repeat.
  void scalar(char* const* data, const int64_t* strides, int64_t n) const {
    double key[4] = {NAN, NAN, NAN, NAN}, prm[4];
    core::TnState st{};
    for (int64_t i = 0; i < n; ++i) {
      params(data, strides, i, prm);
      if (!same(prm, key)) {
        st = core::tn_prepare(prm[0], prm[1], prm[2], prm[3]);
        for (int k = 0; k < 4; ++k) key[k] = prm[k];
      }
      put(data, strides, i, core::tn_icdf_from(st, p_at(data, strides, i), prm[0], prm[1], prm[2], prm[3], polish));
    }
  }

  // A double result on lanes: per chunk, the windows' erfc arguments (lanes), their erfc by ATen (one pair per
  // run of equal parameters), the fitted starts and the Halley step's arguments (lanes), its erf / erfc / exp by
  // ATen (the elements split by which of erf and erfc their step takes, as the batched path below), the step
  // and the sample (lanes). Each element's values are ATen's and the lanes' functions of its own inputs, so the
  // chunking and the thread count change no bit.
  void lanes_double(char** data, const int64_t* strides, int64_t n) const {
    const int64_t C = std::min(n, kChunk);
    std::vector<double> e1(C), e2(C), u1(C), u2(C), ca(C), cq(C), q(C), x(C), h(C), ex(C), c(C), ha(C), hc(C);
    std::vector<unsigned char> slow(C), up(C);
    std::vector<int32_t> ia(C), ic(C), map(C);
    const auto opt = at::TensorOptions().dtype(at::kDouble);
    const auto blob = [&](std::vector<double>& v) { return at::from_blob(v.data(), {C}, opt); };
    at::Tensor u1_t = blob(u1), u2_t = blob(u2), ex_t = blob(ex), ha_t = blob(ha), hc_t = blob(hc);
    double prm[4], key[4];
    for (int64_t c0 = 0; c0 < n; c0 += C) {
      const int nc = static_cast<int>(std::min(C, n - c0));
      dp->args(data, strides, c0, nc, e1.data(), e2.data(), slow.data());
      int nu = 0;
      for (int t = 0; t < nc; ++t) {
        params(data, strides, c0 + t, prm);
        if (t == 0 || !same(prm, key)) {
          for (int k = 0; k < 4; ++k) key[k] = prm[k];
          u1[nu] = e1[t];
          u2[nu] = e2[t];
          ++nu;
        }
        map[t] = nu - 1;
      }
      u1_t.narrow(0, 0, nu).erfc_();
      u2_t.narrow(0, 0, nu).erfc_();
      for (int t = 0; t < nc; ++t) {
        ca[t] = u1[map[t]];
        cq[t] = u2[map[t]];
      }
      dp->fit(data, strides, c0, nc, ca.data(), cq.data(), slow.data(), up.data(), q.data(), x.data(), h.data(),
              ex.data());
      int na = 0, nb = 0;
      for (int t = 0; t < nc; ++t) {  // branch-free split by the step's function (erf for q >= 0.25)
        const int ok = !slow[t], big = q[t] >= 0.25;
        ia[na] = t;
        ic[nb] = t;
        ha[na] = h[t];
        hc[nb] = h[t];
        na += ok & big;
        nb += ok & !big;
      }
      if (na > 0) ha_t.narrow(0, 0, na).erf_();
      if (nb > 0) hc_t.narrow(0, 0, nb).erfc_();
      ex_t.narrow(0, 0, nc).exp_();
      for (int j = 0; j < na; ++j) c[ia[j]] = ha[j];
      for (int j = 0; j < nb; ++j) c[ic[j]] = hc[j];
      dp->finish(data, strides, c0, nc, q.data(), x.data(), c.data(), ex.data(), slow.data(), up.data());
    }
  }

  void operator()(char** data, const int64_t* strides, int64_t n) const {
    if (!batch) return scalar(data, strides, n);
    if (lanes) return lanes(data, strides, n, wide);
    if (dp) return lanes_double(data, strides, n);
    const int64_t C = std::min(n, kChunk);
    std::vector<double> e1(C), e2(C), q(C), x(C), ca(C), ce(C), cf(C);
    std::vector<core::TnState> stv(C + 1);  // + 1: the window carried over from the previous chunk
    std::vector<int32_t> slot(C), pend(C), ie(C), ic(C);
    std::vector<int8_t> kind(C);
    const auto opt = at::TensorOptions().dtype(at::kDouble);
    const auto blob = [&](std::vector<double>& v) { return at::from_blob(v.data(), {C}, opt); };
    at::Tensor e1_t = blob(e1), e2_t = blob(e2), ca_t = blob(ca), ce_t = blob(ce), cf_t = blob(cf);
    // Across chunks: the parameters of the last window seen and the state of the last direct one (a run of
    // equal parameters longer than a chunk keeps its masses), or of the last other one (`cur` < 0).
    double key[4] = {NAN, NAN, NAN, NAN}, prm[4];
    core::TnState carry{}, other{};
    int32_t cur = -1;
    bool carried = false;
    for (int64_t c0 = 0; c0 < n; c0 += C) {
      const int64_t nc = std::min(C, n - c0);
      int32_t m = 0, np = 0;
      if (carried) {
        stv[0] = carry;
        cur = m++;
      }
      // pass 1: windows, erfc arguments; the other windows' elements directly
      for (int64_t t = 0; t < nc; ++t) {
        params(data, strides, c0 + t, prm);
        if (!same(prm, key)) {
          for (int k = 0; k < 4; ++k) key[k] = prm[k];
          const core::TnWindow w = core::tn_window(prm[0], prm[1], prm[2], prm[3]);
          if (core::tn_direct_erfc_args(w, &e1[np], &e2[np])) {
            stv[m].w = w;
            pend[np++] = m;
            cur = m++;
          } else {
            cur = -1;
            other = core::tn_prepare(prm[0], prm[1], prm[2], prm[3]);  // log space, or invalid
          }
        }
        slot[t] = cur;
        if (cur < 0) put(data, strides, c0 + t, core::tn_icdf_from(other, p_at(data, strides, c0 + t), prm[0], prm[1],
                                                                    prm[2], prm[3], polish));
      }
      // pass 2: the masses
      if (np > 0) {
        e1_t.narrow(0, 0, np).erfc_();
        e2_t.narrow(0, 0, np).erfc_();
      }
      for (int32_t j = 0; j < np; ++j) stv[pend[j]] = core::tn_direct_state(stv[pend[j]].w, e1[j], e2[j]);
      carried = cur >= 0;
      if (carried) carry = stv[cur];
      // pass 3: quantile arguments; the fitted starts with the elements sorted by the fit's branch (p >= 0.1
      // or not: random per element, so one loop over both would mispredict); the Halley step's arguments
      int32_t ne = 0, nf = 0, n_ctr = 0, n_tail = 0;
      int32_t* ctr = pend.data();  // free after pass 2
      int32_t* tail = ie.data();   // free until the Halley step's lists below
      for (int64_t t = 0; t < nc; ++t) {
        if (slot[t] < 0) continue;
        const core::TnState& st = stv[slot[t]];
        const double p = p_at(data, strides, c0 + t);
        if (!(p >= 0.0 && p <= 1.0)) {
          kind[t] = 2;  // NaN
          continue;
        }
        const int k = core::tn_direct_quantile_arg(st, core::tn_oriented_u(st.w, p), &q[t], &x[t]);
        kind[t] = int8_t(k);
        if (k == 0) continue;
        if (q[t] >= 0.1) ctr[n_ctr++] = int32_t(t);
        else tail[n_tail++] = int32_t(t);
      }
      for (int32_t j = 0; j < n_ctr; ++j) x[ctr[j]] = core::std_normal_icdf_central(q[ctr[j]]);
      for (int32_t j = 0; j < n_tail; ++j) x[tail[j]] = core::std_normal_icdf_tail(std::log(q[tail[j]]));
      if (polish) {
        const double s2 = core::consts<double>::inv_sqrt2;
        for (int64_t t = 0; t < nc; ++t) {
          if (slot[t] < 0 || kind[t] == 0 || kind[t] == 2) continue;
          if (q[t] >= 0.25) {
            ca[ne] = x[t] * s2;  // erf(x / sqrt 2)
            ie[ne++] = int32_t(t);
          } else {
            ce[nf] = -x[t] * s2;  // erfc(-x / sqrt 2)
            ic[nf++] = int32_t(t);
          }
        }
      }
      // pass 4: the Halley step (double results), z
      if (polish) {
        for (int32_t j = 0; j < ne; ++j) cf[j] = 0.5 * x[ie[j]] * x[ie[j]];
        for (int32_t j = 0; j < nf; ++j) cf[ne + j] = 0.5 * x[ic[j]] * x[ic[j]];
        if (ne > 0) ca_t.narrow(0, 0, ne).erf_();
        if (nf > 0) ce_t.narrow(0, 0, nf).erfc_();
        if (ne + nf > 0) cf_t.narrow(0, 0, ne + nf).exp_();
        for (int32_t j = 0; j < ne; ++j) x[ie[j]] = core::std_normal_icdf_halley(x[ie[j]], q[ie[j]], ca[j], cf[j]);
        for (int32_t j = 0; j < nf; ++j) x[ic[j]] = core::std_normal_icdf_halley(x[ic[j]], q[ic[j]], ce[j], cf[ne + j]);
      }
      for (int64_t t = 0; t < nc; ++t) {
        if (slot[t] < 0) continue;
        if (kind[t] == 2) {
          put(data, strides, c0 + t, core::quiet_nan<double>());
          continue;
        }
        params(data, strides, c0 + t, prm);
        put(data, strides, c0 + t,
            core::tn_icdf_finish(stv[slot[t]].w, kind[t] != 0 ? kind[t] * x[t] : x[t], prm[0], prm[1], prm[2], prm[3]));
      }
    }
  }
};

at::Tensor truncated_normal_icdf(const at::Tensor& p, const at::Tensor& loc, const at::Tensor& scale,
                                 const at::Tensor& low, const at::Tensor& high) {
  using Op = ops::TruncatedNormalIcdf;
  const at::Tensor* ts[5] = {&p, &loc, &scale, &low, &high};
  auto iter = ops::nary_iter("truncated_normal_icdf", 5, Op::names, ts, 1, /*wide=*/0);
  const bool wide = ops::wide_input(iter, 0);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, iter.dtype(0), "truncated_normal_icdf", [&] {
    // A double result is polished to full precision; narrower ones take the fitted quantile alone
    // (relative error <= 2.4e-8, below float's half ulp; csrc/core/normal.h std_normal_icdf_lower).
    static const LanesFn lanes = pick_lanes<scalar_t>(false);
    static const DoublePasses* dp = std::is_same<scalar_t, double>::value ? pick_double_passes() : nullptr;
    for_each_rows(iter, IcdfLoop<scalar_t>{wide, sizeof(scalar_t) >= 8, iter.numel() >= kBatchMin, lanes, dp});
  });
  return iter.output();
}

// The backward kernel's loop: two exponentials per element (the phi ratios of dx/da and dx/db), batched as the
// quantile's erfc (ATen's vectorised exp_ on a chunk's exponents, core::tn_backward_args / tn_backward_from);
// iterations shorter than kBatchMin go one element at a time through core::truncated_normal_backward.
template <typename scalar_t>
struct BackwardLoop {
  bool wide;
  bool batch;  // iter.numel() >= kBatchMin (see IcdfLoop)
  LanesFn lanes;  // as IcdfLoop's

  void inputs(char* const* data, const int64_t* strides, int64_t i, double* in) const {
    for (int k = 0; k < 7; ++k)
      in[k] = k == 2 ? load_p<scalar_t>(data, strides, 6, i, wide) : load<scalar_t, double>(data, strides, 4 + k, i);
  }
  static void put(char* const* data, const int64_t* strides, int64_t i, const double* o) {
    for (int j = 0; j < 4; ++j) *reinterpret_cast<scalar_t*>(data[j] + i * strides[j]) = static_cast<scalar_t>(o[j]);
  }

  void operator()(char** data, const int64_t* strides, int64_t n) const {
    double in[7], o[4];
    if (!batch) {
      for (int64_t i = 0; i < n; ++i) {
        inputs(data, strides, i, in);
        ops::TruncatedNormalBackward{}(in[0], in[1], in[2], in[3], in[4], in[5], in[6], o);
        put(data, strides, i, o);
      }
      return;
    }
    if (lanes) return lanes(data, strides, n, wide);
    const int64_t C = std::min(n, kChunk);
    std::vector<core::TnGradArgs> r(C);
    std::vector<double> ea(C), eb(C), g(C);
    const auto opt = at::TensorOptions().dtype(at::kDouble);
    at::Tensor ea_t = at::from_blob(ea.data(), {C}, opt), eb_t = at::from_blob(eb.data(), {C}, opt);
    for (int64_t c0 = 0; c0 < n; c0 += C) {
      const int64_t nc = std::min(C, n - c0);
      for (int64_t t = 0; t < nc; ++t) {
        inputs(data, strides, c0 + t, in);
        r[t] = core::tn_backward_args(in[1], in[2], in[3], in[4], in[5], in[6]);
        g[t] = in[0];
        ea[t] = r[t].la;
        eb[t] = r[t].lb;
      }
      ea_t.narrow(0, 0, nc).exp_();
      eb_t.narrow(0, 0, nc).exp_();
      for (int64_t t = 0; t < nc; ++t) {
        core::tn_backward_from(r[t], g[t], ea[t], eb[t], o);
        put(data, strides, c0 + t, o);
      }
    }
  }
};

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> truncated_normal_backward(
    const at::Tensor& grad, const at::Tensor& z, const at::Tensor& p, const at::Tensor& loc, const at::Tensor& scale,
    const at::Tensor& low, const at::Tensor& high) {
  using Op = ops::TruncatedNormalBackward;
  const at::Tensor* ts[7] = {&grad, &z, &p, &loc, &scale, &low, &high};
  auto iter = ops::nary_iter("truncated_normal_backward", 7, Op::names, ts, 4, /*wide=*/2);
  const bool wide = ops::wide_input(iter, 2);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, iter.dtype(0), "truncated_normal_backward", [&] {
    static const LanesFn lanes = pick_lanes<scalar_t>(true);
    for_each_rows(iter, BackwardLoop<scalar_t>{wide, iter.numel() >= kBatchMin, lanes});
  });
  return std::make_tuple(iter.output(0), iter.output(1), iter.output(2), iter.output(3));
}

}  // namespace

TORCH_LIBRARY_IMPL(gradkern, CPU, m) {
  m.impl("truncated_normal_icdf", &truncated_normal_icdf);
  m.impl("truncated_normal_backward", &truncated_normal_backward);
}

}  // namespace gradkern
