// gradkern numerical core: GNU vector helpers for host reductions (GCC/Clang host builds only; nvcc's
// host and device passes take the scalar loops). GK_HOST_SIMD says whether they exist.
#pragma once

#if defined(__GNUC__) && !defined(__CUDACC__)
#define GK_HOST_SIMD 1
#endif

namespace gradkern {
namespace core {

// Host builds with GCC/Clang (not nvcc, whose host and device passes take the scalar loops) use GNU
// vector types for the pairwise reductions below: the auto-vectoriser keeps each lane's in-order
// reduction and shuffles between lanes, which costs more than it saves. 16-byte vectors are SSE2,
// part of the x86-64 baseline (no -march flags needed). Only the order of the sums changes.
#ifdef GK_HOST_SIMD
template <typename T> struct Simd;
template <> struct Simd<float> {
  typedef float type __attribute__((vector_size(16)));
  static constexpr int n = 4;
};
template <> struct Simd<double> {
  typedef double type __attribute__((vector_size(16)));
  static constexpr int n = 2;
};
template <typename T>
inline typename Simd<T>::type simd_load(const T* p) {
  typename Simd<T>::type v;
  __builtin_memcpy(&v, p, sizeof(v));  // unaligned load
  return v;
}
template <typename T>
inline T simd_total(typename Simd<T>::type v) {
  T a[Simd<T>::n];
  __builtin_memcpy(a, &v, sizeof(v));
  T t = T(0);
  for (int l = 0; l < Simd<T>::n; ++l) t += a[l];
  return t;
}
#endif

}  // namespace core
}  // namespace gradkern
