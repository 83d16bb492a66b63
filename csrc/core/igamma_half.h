// gradkern numerical core: the regularized incomplete gamma functions at half-integer order,
// log P(D/2, x) and log Q(D/2, x), in log space (the radial CDFs of the Gaussian scale mixtures,
// eqs. 41-43 of Jankowiak & Karaletsos 2019).
#pragma once

#include "core/common.h"
#include "core/normal.h"

namespace gradkern {
namespace core {

// log P(D/2, x) and log Q(D/2, x), the regularized incomplete gamma functions at half-integer order
// (the radial CDF of eqs. 41-43 is Phi~(y) = y^{1-D} C_D Q(D/2, y^2/2)). x < a + 1: the power series for
// P (terms decrease from the first); otherwise the finite sums of eqs. 42 (D even) and 43 (D odd) for
// Q, summed from their largest (last) term downwards so no term is exponentiated separately.
// `lgamma_half_d` = lgamma(D/2) and `log_half_d` = log(D/2) depend on D only; callers that evaluate
// many x for one D pass them in so the loop over components does not recompute them.
// The one of log P, log Q that log_gamma_pq_half sums directly, for 0 < x < inf and D >= 1: returns 0
// with *l = log P (power series, x < a + 1) or 1 with *l = log Q (finite sums, clamped to <= 0); the
// other is log1mexp(*l) (clamped as in log_gamma_pq_half), so callers that need only one of them skip
// that call.
template <typename T>
GK_HD int log_gamma_half_direct(int D, T x, T* l, T lgamma_half_d, T log_half_d) {
  const T a = T(0.5) * T(D);
  if (x < a + T(1)) {
    T term = T(1), sum = T(1);
    for (int n = 1; n < 100000; ++n) {  // cap: ratio x/(a+n) < 1; ~sqrt(a) terms in practice
      term *= x / (a + T(n));
      sum += term;
      if (term < num<T>::eps * sum) break;
    }
    *l = a * gk_log(x) - x - (lgamma_half_d + log_half_d) + gk_log(sum);  // lgamma(a + 1)
    return 0;
  }
  const T lx = gk_log(x);
  T lq;
  if (D % 2 == 0) {
    // Eq. 42: Q(n, x) = e^{-x} sum_{k<n} x^k / k!, n = D/2; largest term k = n - 1 (x >= n + 1).
    const int n = D / 2;
    T term = T(1), sum = T(1);
    for (int k = n - 1; k > 0; --k) {  // cap: n - 1 terms at most
      term *= T(k) / x;
      sum += term;
      if (term < num<T>::eps * sum) break;
    }
    lq = -x + T(n - 1) * lx - lgamma_half_d + gk_log(sum);  // lgamma(n), n = D/2
  } else {
    // Eq. 43: Q(n + 1/2, x) = erfc(sqrt x) + e^{-x} sum_{k=1}^{n} x^{k-1/2} / Gamma(k + 1/2).
    const int n = (D - 1) / 2;
    const T l_erfc = consts<T>::ln2 + log_ndtr(-gk_sqrt(T(2) * x));
    if (n == 0) {
      lq = l_erfc;
    } else {
      T term = T(1), sum = T(1);
      for (int k = n; k > 1; --k) {  // cap: n - 1 terms at most
        term *= (T(k) - T(0.5)) / x;
        sum += term;
        if (term < num<T>::eps * sum) break;
      }
      const T lsum = -x + (T(n) - T(0.5)) * lx - lgamma_half_d + gk_log(sum);  // lgamma(n + 1/2)
      lq = logaddexp(lsum, l_erfc);
    }
  }
  *l = gk_min(lq, T(0));
  return 1;
}

template <typename T>
GK_HD void log_gamma_pq_half(int D, T x, T* log_p, T* log_q, T lgamma_half_d, T log_half_d) {
  if (gk_isnan(x) || x < T(0) || D < 1) {
    *log_p = *log_q = quiet_nan<T>();
    return;
  }
  if (x == T(0)) {
    *log_p = neg_inf<T>();
    *log_q = T(0);
    return;
  }
  T l;
  if (log_gamma_half_direct(D, x, &l, lgamma_half_d, log_half_d) == 0) {
    *log_p = l;
    *log_q = log1mexp(gk_min(l, T(0)));
  } else {
    *log_q = l;
    *log_p = log1mexp(l);
  }
}

template <typename T>
GK_HD void log_gamma_pq_half(int D, T x, T* log_p, T* log_q, T lgamma_half_d) {
  log_gamma_pq_half(D, x, log_p, log_q, lgamma_half_d, gk_log(T(0.5) * T(D)));
}

template <typename T>
GK_HD void log_gamma_pq_half(int D, T x, T* log_p, T* log_q) {
  log_gamma_pq_half(D, x, log_p, log_q, gk_lgamma(T(0.5) * T(D)));
}

}  // namespace core
}  // namespace gradkern
