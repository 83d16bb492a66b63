// Host-side argument checks and iterator construction shared by the CPU and CUDA backends.
// Errors name the op, the argument and the constraint (e.g. "gradkern.gammainc: x must be a floating
// point tensor, got Long").
#pragma once

#include <ATen/ATen.h>
#include <ATen/TensorIterator.h>

#include <initializer_list>
#include <string>

namespace gradkern {
namespace ops {

inline void check_floating(const char* op, const char* name, const at::Tensor& t) {
  TORCH_CHECK(t.defined(), "gradkern.", op, ": ", name, " is undefined");
  TORCH_CHECK(at::isFloatingType(t.scalar_type()), "gradkern.", op, ": ", name,
              " must be a floating point tensor, got ", t.scalar_type());
}

// Enumerated string arguments (as torch spells them, e.g. reduce="sum"): the index of `value` in
// `choices`, or an error that lists the valid values.
inline int64_t choice_index(const char* op, const char* name, c10::string_view value,
                            std::initializer_list<const char*> choices) {
  int64_t i = 0;
  std::string valid;
  for (const char* c : choices) {
    if (value == c) return i;
    valid += (i ? ", \"" : "\"") + std::string(c) + "\"";
    ++i;
  }
  TORCH_CHECK(false, "gradkern.", op, ": ", name, " must be one of ", valid, ", got \"", std::string(value), "\"");
  return -1;
}

// Two-argument elementwise ops: same dtype and device (CPU 0-dim scalars excepted for the device, as in
// torch's own binary ops), broadcasting handled by TensorIterator, output allocated in the common dtype.
inline at::TensorIterator binary_iter(const char* op, const char* name_a, const at::Tensor& a,
                                      const char* name_b, const at::Tensor& b) {
  check_floating(op, name_a, a);
  check_floating(op, name_b, b);
  TORCH_CHECK(a.scalar_type() == b.scalar_type(), "gradkern.", op, ": ", name_a, " and ", name_b,
              " must have the same dtype, got ", name_a, ": ", a.scalar_type(), " and ", name_b, ": ",
              b.scalar_type());
  const bool a_scalar = a.dim() == 0 && a.is_cpu();
  const bool b_scalar = b.dim() == 0 && b.is_cpu();
  TORCH_CHECK(a.device() == b.device() || a_scalar || b_scalar, "gradkern.", op, ": ", name_a, " and ",
              name_b, " must be on the same device, got ", name_a, " on ", a.device(), " and ", name_b,
              " on ", b.device());
  return at::TensorIteratorConfig()
      .add_owned_output(at::Tensor())
      .add_const_input(a)
      .add_const_input(b)
      .build();
}

// The two concentrations of the Beta sampler: floating, one dtype (and, on a device, one device).
inline void check_beta_concentrations(const char* op, const at::Tensor& a, const at::Tensor& b) {
  check_floating(op, "concentration1", a);
  check_floating(op, "concentration0", b);
  TORCH_CHECK(a.scalar_type() == b.scalar_type(), "gradkern.", op, ": concentration1 and concentration0 must have "
              "the same dtype, got ", a.scalar_type(), " and ", b.scalar_type());
  TORCH_CHECK(a.device() == b.device() || (a.dim() == 0 && a.is_cpu()) || (b.dim() == 0 && b.is_cpu()),
              "gradkern.", op, ": concentration1 and concentration0 must be on the same device, got ", a.device(),
              " and ", b.device());
}

// N-argument elementwise ops with `outputs` outputs: every input floating, all of one dtype, all on one
// device (CPU 0-dim tensors excepted, as in torch's own binary ops); broadcasting by TensorIterator.
// `wide`, if >= 0, is an input that may also be float64 while the others are of a narrower floating dtype
// (probabilities that keep their resolution, e.g. uniforms for float32 samples); the outputs then take the
// others' dtype, and the kernel reads that input as double (wide_input says whether it is).
inline at::TensorIterator nary_iter(const char* op, int n, const char* const* names, const at::Tensor* const* ts,
                                    int outputs = 1, int wide = -1) {
  for (int i = 0; i < n; ++i) check_floating(op, names[i], *ts[i]);
  // The device every non-scalar input must share (a CPU 0-dim tensor combines with any device).
  int ref = 0;
  for (int i = 0; i < n; ++i)
    if (!(ts[i]->dim() == 0 && ts[i]->is_cpu())) { ref = i; break; }
  const int first = wide == 0 && n > 1 ? 1 : 0;  // the dtype the others must share
  const auto dtype = ts[first]->scalar_type();
  bool mixed = false;
  for (int i = 0; i < n; ++i) {
    const auto ti = ts[i]->scalar_type();
    const bool widened = i == wide && ti == at::kDouble && ti != dtype;
    mixed = mixed || widened;
    TORCH_CHECK(ti == dtype || widened, "gradkern.", op, ": ", names[first], " and ", names[i],
                " must have the same dtype", i == wide ? " (or float64)" : "", ", got ", names[first], ": ", dtype,
                " and ", names[i], ": ", ti);
    const bool scalar = ts[i]->dim() == 0 && ts[i]->is_cpu();
    TORCH_CHECK(scalar || ts[i]->device() == ts[ref]->device(), "gradkern.", op, ": ", names[ref], " and ",
                names[i], " must be on the same device, got ", names[ref], " on ", ts[ref]->device(), " and ",
                names[i], " on ", ts[i]->device());
  }
  at::TensorIteratorConfig config;
  if (mixed) config.check_all_same_dtype(false).declare_static_dtype(dtype);
  for (int i = 0; i < outputs; ++i) config.add_owned_output(at::Tensor());
  for (int i = 0; i < n; ++i) config.add_const_input(*ts[i]);
  return config.build();
}

// Whether input `i` of an iterator built by nary_iter is the widened float64 one.
inline bool wide_input(const at::TensorIterator& iter, int i) {
  return iter.input_dtype(i) == at::kDouble && iter.dtype(0) != at::kDouble;
}

// Three-argument elementwise ops (the incomplete beta family).
inline at::TensorIterator ternary_iter(const char* op, const char* name_a, const at::Tensor& a,
                                       const char* name_b, const at::Tensor& b, const char* name_c,
                                       const at::Tensor& c, int outputs = 1) {
  const char* names[3] = {name_a, name_b, name_c};
  const at::Tensor* ts[3] = {&a, &b, &c};
  return nary_iter(op, 3, names, ts, outputs);
}

}  // namespace ops
}  // namespace gradkern
