// Shared by the C++ CPU path and the CUDA path: nothing here may depend on either.
#pragma once

#include <cmath>
#include <cstdint>

#if defined(__CUDACC__) || defined(__HIPCC__)
#define DENSEVL_HOST_DEVICE __host__ __device__ __forceinline__
#else
#define DENSEVL_HOST_DEVICE inline
#endif

namespace densevl {

// exp in the precision of the arithmetic (CUDA's device overloads; <cmath> on the host).
DENSEVL_HOST_DEVICE float exp_of(float x) { return expf(x); }
DENSEVL_HOST_DEVICE double exp_of(double x) { return exp(x); }

// `a` replaces `b` as the running maximum: larger, or the first NaN (torch.max propagates NaN and
// reports the first one; ties keep the earlier index, as torch.argmax does).
template <typename T>
DENSEVL_HOST_DEVICE bool beats(T a, T b) {
  return a > b || (a != a && b == b);
}

// A maximum that propagates NaN as torch.amax does, kept as two running values, the maximum of
// the numbers and a NaN seen (0 while none), each a one-comparison select. T may also be a GCC
// vector type: the CPU path runs these on SIMD registers.
template <typename T>
DENSEVL_HOST_DEVICE T max_step(T m, T v) {
  return v > m ? v : m;
}

template <typename T>
DENSEVL_HOST_DEVICE T nan_step(T seen, T v) {
  return v != v ? v : seen;
}

template <typename T>
DENSEVL_HOST_DEVICE T max_or_nan(T m, T seen) {
  return seen != seen ? seen : m;
}

}  // namespace densevl
