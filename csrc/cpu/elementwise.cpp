// CPU kernels for the elementwise ops: thin TensorIterator loops over the numerical core.
// TensorIterator brings broadcasting, strides (non-contiguous inputs), empty tensors and
// multi-threading (at::parallel_for over all intra-op threads). Half and bfloat16 are computed in float.
//
// Float and double run our own 1-D loops, compiled three times: for the baseline x86-64 ISA and,
// selected at run time when the CPU has them, with AVX2 + FMA and (standard_gamma_grad only) AVX-512
// (`target` attribute on the loop functions only, so no inline function of torch or of the core is ever
// emitted in two ISAs under one symbol: everything these loops call is inlined into them by `flatten`).
// FMA shortens every Horner chain of the core. standard_gamma_grad goes by blocks of kBlock elements:
// the Gamma bulk path (csrc/core/igamma_bulk.h) on GNU vectors, one evaluation per tier present, and the
// series-branch lanes through a lane-parallel copy of the scalar series loop; each lane's result is the
// scalar core's, bit for bit (tests/test_gamma_accuracy.py checks it).
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/native/cpu/Loops.h>
#include <torch/library.h>

#include <cstring>

#include "ops/elementwise.h"
#include "ops/tensor_checks.h"

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define GK_HAVE_AVX2_CLONE 1
#define GK_ATTR_BASE __attribute__((flatten))
#define GK_ATTR_AVX2 __attribute__((target("avx2,fma"), flatten))
#define GK_ATTR_AVX512 __attribute__((target("avx512f,avx512vl,avx512dq,avx2,fma"), flatten))
#else
#define GK_ATTR_BASE
#endif

namespace gradkern {
namespace {

bool cpu_has_avx512() {
#ifdef GK_HAVE_AVX2_CLONE
  static const bool yes = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
                          __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("fma");
  return yes;
#else
  return false;
#endif
}

bool cpu_has_avx2_fma() {
#ifdef GK_HAVE_AVX2_CLONE
  static const bool yes = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return yes;
#else
  return false;
#endif
}

// Elements per block of the Gamma bulk path: 4 AVX2 vectors of double, 2 of float.
constexpr int kBlock = 16;

// Loop bodies, instantiated once per ISA by GK_DEFINE_LOOPS. data = {out, a, b}, byte strides.
#define GK_DEFINE_LOOPS(SUFFIX, ATTR)                                                                     \
  template <typename Op, typename T>                                                                     \
  ATTR void binary_loop_##SUFFIX(char** data, const int64_t* strides, int64_t n) {                       \
    char *o = data[0], *a = data[1], *b = data[2];                                                        \
    for (int64_t i = 0; i < n; ++i, o += strides[0], a += strides[1], b += strides[2])                    \
      *reinterpret_cast<T*>(o) = Op{}(*reinterpret_cast<const T*>(a), *reinterpret_cast<const T*>(b));   \
  }                                                                                                      \
  /* One block of the bulk polynomial, every lane in tier Tier, evaluated on GNU vectors of kBlock */   \
  /* lanes (lowered to the widest registers the function's ISA has). */                                  \
  template <typename T, int Tier>                                                                        \
  ATTR void bulk_block_##SUFFIX(const T* v, const T* w, T* out) {                                       \
    typedef T vec_t __attribute__((vector_size(kBlock * sizeof(T))));                                    \
    vec_t vv, ww;                                                                                        \
    std::memcpy(&vv, v, sizeof(vv));                                                                     \
    std::memcpy(&ww, w, sizeof(ww));                                                                     \
    const vec_t r = core::bulk::eval<T, Tier, vec_t>(vv, ww);                                            \
    std::memcpy(out, &r, sizeof(r));                                                                     \
  }                                                                                                      \
  template <typename T, int I = 0>                                                                       \
  ATTR void bulk_block_tier_##SUFFIX(int tier, const T* v, const T* w, T* out) {                        \
    if constexpr (I + 1 == core::bulk::tiers<T>::count) {                                                \
      bulk_block_##SUFFIX<T, I>(v, w, out);                                                              \
    } else if (tier == I) {                                                                              \
      bulk_block_##SUFFIX<T, I>(v, w, out);                                                              \
    } else {                                                                                             \
      bulk_block_tier_##SUFFIX<T, I + 1>(tier, v, w, out);                                               \
    }                                                                                                    \
  }                                                                                                      \
  /* The series branch (eq. 13; core::detail::series_grad) on the lanes marked in `on`: the scalar */     \
  /* loop's operations in the same order, lane by lane, each lane frozen once its own test has */        \
  /* stopped it (so each result is the scalar one); the inner lane loops vectorize. c = log x - */        \
  /* psi(a + 1) per lane (computed by the caller as the scalar path does). Writes dx/da = -(x/a) G. */    \
  template <typename T>                                                                                  \
  ATTR void series_block_##SUFFIX(const T* a_, const T* x_, const T* c_, const bool* on, T* out) {      \
    constexpr int L = kBlock;                                                                            \
    T a[L], x[L], xo[L], c[L], ac[L], tn[L], r[L], G[L], u[L];                                           \
    int act[L];                                                                                          \
    const T he = core::num<T>::eps * T(0.5);                                                             \
    int any = 0;                                                                                         \
    _Pragma("omp simd reduction(|:any)")                                                                 \
    for (int l = 0; l < L; ++l) {                                                                        \
      /* Unused lanes get harmless values (no NaN/inf/subnormal in the masked arithmetic). */             \
      a[l] = on[l] ? a_[l] : T(1);                                                                       \
      x[l] = on[l] ? x_[l] : T(0.5);                                                                     \
      c[l] = on[l] ? c_[l] : T(0);                                                                       \
      ac[l] = c[l] < T(0) ? -c[l] : c[l];                                                                \
      const T ap1 = a[l] + T(1);                                                                         \
      /* The scalar early return (G = c when the first term is below eps/2 |c|). */                       \
      act[l] = on[l] && !(x[l] * (ac[l] * ap1 + T(1)) <= he * ac[l] * ap1 * ap1);                         \
      /* A lane done before the loop keeps G = c; its x (possibly subnormal, which is ~100x slower */     \
      /* in the arithmetic) is swapped for a harmless value in the masked loop. */                        \
      xo[l] = x[l];                                                                                      \
      x[l] = act[l] ? x[l] : T(0.5);                                                                     \
      tn[l] = T(1); r[l] = T(0); G[l] = c[l]; u[l] = ap1;                                                \
      any |= act[l];                                                                                     \
    }                                                                                                    \
    for (int n = 1; any && n < core::num<T>::max_iter; n += 2) {                                         \
      any = 0;                                                                                           \
      _Pragma("omp simd reduction(|:any)")                                                               \
      for (int l = 0; l < L; ++l) {                                                                      \
        const T uu = u[l], v = uu + T(1);                                                                \
        const T D = T(1) / (uu * v);                                                                     \
        const T i1 = v * D, i2 = uu * D;                                                                 \
        T t = tn[l] * (x[l] * i1);                                                                       \
        const T r1 = r[l] + i1;                                                                          \
        T g = G[l] + t * (c[l] - r1);                                                                    \
        t = t * (x[l] * i2);                                                                             \
        const T r2 = r1 + i2;                                                                            \
        const T dG = t * (c[l] - r2);                                                                    \
        g = g + dG;                                                                                      \
        const bool on_l = act[l] != 0;                                                                   \
        tn[l] = on_l ? t : tn[l];                                                                        \
        r[l] = on_l ? r2 : r[l];                                                                         \
        G[l] = on_l ? g : G[l];                                                                          \
        u[l] = uu + T(2);                                                                                \
        const T at = tn[l] < T(0) ? -tn[l] : tn[l], aG = G[l] < T(0) ? -G[l] : G[l];                     \
        act[l] = on_l && !(at * (ac[l] + r[l]) <= he * aG);                                              \
        any |= act[l];                                                                                   \
      }                                                                                                  \
    }                                                                                                    \
    for (int l = 0; l < L; ++l)                                                                          \
      if (on[l]) out[l] = xo[l] * (-G[l] / a[l]);                                                        \
  }                                                                                                      \
  /* standard_gamma_grad, a block of kBlock elements at a time: each tier present among the lanes is */   \
  /* evaluated once on the whole block (vectorized) and its lanes picked out; lanes outside the bulk */   \
  /* go element by element through the scalar core. The lane test is the core's own (bulk::classify: */  \
  /* tier of a, same v), and the scalar core evaluates the same polynomial for bulk elements, so a */     \
  /* result never depends on the blocking or on the neighbours. */                                        \
  template <typename T>                                                                                  \
  ATTR void gamma_grad_loop_##SUFFIX(char** data, const int64_t* strides, int64_t n) {                   \
    using tiers = core::bulk::tiers<T>;                                                                  \
    char *o = data[0], *pa = data[1], *px = data[2];                                                      \
    int64_t i = 0;                                                                                       \
    for (; i + kBlock <= n; i += kBlock) {                                                               \
      T a[kBlock], x[kBlock], v[kBlock], w[kBlock], r[kBlock], rt[kBlock];                               \
      int tier[kBlock];                                                                                  \
      for (int l = 0; l < kBlock; ++l) {                                                                 \
        a[l] = *reinterpret_cast<const T*>(pa + (i + l) * strides[1]);                                   \
        x[l] = *reinterpret_cast<const T*>(px + (i + l) * strides[2]);                                   \
      }                                                                                                  \
      unsigned present = 0;                                                                              \
      for (int l = 0; l < kBlock; ++l) {                                                                 \
        tier[l] = core::bulk::classify(a[l], x[l], v[l]);                                                \
        w[l] = T(1) / a[l];                                                                              \
        if (tier[l] >= 0) present |= 1u << tier[l];                                                      \
        else v[l] = T(0); /* keep unused lanes finite */                                                 \
      }                                                                                                  \
      for (int t = 0; t < tiers::count; ++t) {                                                           \
        if (!(present & (1u << t))) continue;                                                            \
        bulk_block_tier_##SUFFIX<T>(t, v, w, rt);                                                        \
        for (int l = 0; l < kBlock; ++l)                                                                 \
          if (tier[l] == t) r[l] = rt[l];                                                                \
      }                                                                                                  \
      /* Lanes on the series branch (valid, a below the Temme range, 0 < x < a + 1: what the scalar */  \
      /* core picks for a non-bulk lane) go through the lane-parallel series together. */                \
      bool ser[kBlock];                                                                                  \
      T c[kBlock];                                                                                       \
      int nser = 0;                                                                                      \
      for (int l = 0; l < kBlock; ++l) {                                                                 \
        ser[l] = tier[l] < 0 && core::detail::series_lane(a[l], x[l]);                                   \
        if (ser[l]) {                                                                                    \
          c[l] = core::log_minus_digamma(x[l], a[l] + T(1));                                             \
          ++nser;                                                                                        \
        }                                                                                                \
      }                                                                                                  \
      if (nser > 1) series_block_##SUFFIX<T>(a, x, c, ser, r);                                            \
      for (int l = 0; l < kBlock; ++l)                                                                   \
        if (tier[l] < 0 && !(ser[l] && nser > 1)) r[l] = core::standard_gamma_grad(a[l], x[l]);         \
      for (int l = 0; l < kBlock; ++l) *reinterpret_cast<T*>(o + (i + l) * strides[0]) = r[l];          \
    }                                                                                                    \
    for (; i < n; ++i) {                                                                                 \
      *reinterpret_cast<T*>(o + i * strides[0]) = core::standard_gamma_grad(                            \
          *reinterpret_cast<const T*>(pa + i * strides[1]), *reinterpret_cast<const T*>(px + i * strides[2])); \
    }                                                                                                    \
  }

GK_DEFINE_LOOPS(base, GK_ATTR_BASE)
#ifdef GK_HAVE_AVX2_CLONE
GK_DEFINE_LOOPS(avx2, GK_ATTR_AVX2)
GK_DEFINE_LOOPS(avx512, GK_ATTR_AVX512)
#endif
#undef GK_DEFINE_LOOPS

using loop1d_t = void (*)(char**, const int64_t*, int64_t);

template <typename Op, typename T> loop1d_t pick_loop() {
  if constexpr (std::is_same_v<Op, ops::StandardGammaGrad>) {
#ifdef GK_HAVE_AVX2_CLONE
    // AVX-512 only for this loop: its vectorized bulk polynomial is where the wider registers pay.
    if (cpu_has_avx512()) return &gamma_grad_loop_avx512<T>;
    if (cpu_has_avx2_fma()) return &gamma_grad_loop_avx2<T>;
#endif
    return &gamma_grad_loop_base<T>;
  } else {
#ifdef GK_HAVE_AVX2_CLONE
    if (cpu_has_avx2_fma()) return &binary_loop_avx2<Op, T>;
#endif
    return &binary_loop_base<Op, T>;
  }
}

template <typename Op>
at::Tensor cpu_binary(const char* op, const char* name_a, const at::Tensor& a, const char* name_b,
                      const at::Tensor& b) {
  auto iter = ops::binary_iter(op, name_a, a, name_b, b);
  const auto dtype = iter.common_dtype();
  if (dtype == at::kFloat || dtype == at::kDouble) {
    AT_DISPATCH_FLOATING_TYPES(dtype, "gradkern_elementwise", [&] {
      const loop1d_t loop = pick_loop<Op, scalar_t>();
      // Grain: these ops cost 10-200 ns per element, so a smaller grain than TensorIterator's
      // default (32768) lets medium-sized tensors use every thread.
      iter.for_each([loop](char** data, const int64_t* strides, int64_t n) { loop(data, strides, n); }, 4096);
    });
    return iter.output();
  }
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, dtype, "gradkern_elementwise", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    at::native::cpu_kernel(iter, [](scalar_t x, scalar_t y) -> scalar_t {
      return static_cast<scalar_t>(Op{}(static_cast<acc_t>(x), static_cast<acc_t>(y)));
    });
  });
  return iter.output();
}

#define GK_DEFINE_KERNEL(FN, OP, NAME_A, NAME_B)                \
  at::Tensor FN(const at::Tensor& a, const at::Tensor& b) {     \
    return cpu_binary<ops::OP>(#FN, NAME_A, a, NAME_B, b);      \
  }
GK_ELEMENTWISE_OPS(GK_DEFINE_KERNEL)
#undef GK_DEFINE_KERNEL

}  // namespace

TORCH_LIBRARY_IMPL(gradkern, CPU, m) {
#define GK_REGISTER_KERNEL(FN, OP, NAME_A, NAME_B) m.impl(#FN, &FN);
  GK_ELEMENTWISE_OPS(GK_REGISTER_KERNEL)
#undef GK_REGISTER_KERNEL
}

}  // namespace gradkern
