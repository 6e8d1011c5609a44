// Per-element arithmetic of upsample_argmax, shared by the C++ CPU path and the CUDA kernel.
//
// For every output pixel: the two source taps along each axis exactly as
// torch.nn.functional.interpolate(mode='bilinear') places them, the bilinear value of each of the
// K channels, and an online reduction over channels that keeps the first maximum and the softmax
// normaliser sum_k exp(scale * (v_k - v_best)), so max_prob = 1 / sum. Each path supplies its
// own loop over output pixels (CPU: rows in parallel, channels-last; CUDA: a thread per pixel).
#pragma once

#include "common.h"

namespace densevl {

template <typename T>
struct LinearTap {
  int64_t i0;  // lower source index
  int64_t i1;  // upper source index (== i0 at the last row / column)
  T l0;        // weight of i0
  T l1;        // weight of i1
};

// Source taps of output index `dst` along one axis of size in_size -> out_size (ATen's
// area_pixel_compute_source_index + guard_index_and_lambda, with its same-size copy case).
template <typename T>
DENSEVL_HOST_DEVICE LinearTap<T> linear_tap(int64_t dst, int64_t in_size, int64_t out_size,
                                            bool align_corners) {
  LinearTap<T> tap;
  if (in_size == out_size) {
    tap.i0 = dst;
    tap.i1 = dst;
    tap.l0 = T(1);
    tap.l1 = T(0);
    return tap;
  }
  T src;
  if (align_corners) {
    const T scale = out_size > 1 ? T(in_size - 1) / T(out_size - 1) : T(0);
    src = scale * T(dst);
  } else {
    const T scale = T(in_size) / T(out_size);
    src = scale * (T(dst) + T(0.5)) - T(0.5);
    if (src < T(0)) src = T(0);
  }
  int64_t i0 = static_cast<int64_t>(floor(src));
  if (i0 > in_size - 1) i0 = in_size - 1;
  T l1 = src - T(i0);
  l1 = l1 < T(0) ? T(0) : (l1 > T(1) ? T(1) : l1);
  tap.i0 = i0;
  tap.i1 = i0 + (i0 < in_size - 1 ? 1 : 0);
  tap.l1 = l1;
  tap.l0 = T(1) - l1;
  return tap;
}

// One channel's bilinear value from its four source samples (x<row><col>). Both builds compile
// this without floating-point contraction, so the CPU and CUDA paths round identically.
template <typename T>
DENSEVL_HOST_DEVICE T bilinear(T x00, T x01, T x10, T x11, const LinearTap<T>& ty,
                               const LinearTap<T>& tx) {
  return ty.l0 * (tx.l0 * x00 + tx.l1 * x01) + ty.l1 * (tx.l0 * x10 + tx.l1 * x11);
}

// Running first-argmax and softmax normaliser over the channels of one pixel.
template <typename T>
struct ArgmaxSoftmax {
  T best;         // largest value so far (unscaled)
  T sum;          // sum_k exp(scale * (v_k - best)) so far; >= 1
  int64_t index;  // channel of `best` (the first one on ties)

  DENSEVL_HOST_DEVICE void start(T v) {
    best = v;
    sum = T(1);
    index = 0;
  }

  DENSEVL_HOST_DEVICE void update(T v, int64_t k, T scale) {
    if (beats(v, best)) {
      sum = sum * exp_of(scale * (best - v)) + T(1);
      best = v;
      index = k;
    } else {
      sum += exp_of(scale * (v - best));
    }
  }

  DENSEVL_HOST_DEVICE T max_prob() const { return T(1) / sum; }
};

// One output pixel, written at index `out` of labels / max_prob / best: x<row><col> point at
// channel 0 of its four source samples, channel k lying k * stride elements further (1 in the CPU
// path's channels-last copy, h * w in the CUDA path's (B, K, h, w) input). S is the stored
// type, T the arithmetic's.
template <typename T, typename S>
DENSEVL_HOST_DEVICE void upsample_argmax_pixel(const S* x00, const S* x01, const S* x10,
                                               const S* x11, int64_t stride, int64_t channels,
                                               const LinearTap<T>& ty, const LinearTap<T>& tx,
                                               T scale, int64_t out, int64_t* labels,
                                               T* max_prob, T* best) {
  ArgmaxSoftmax<T> state;
  state.start(bilinear<T>(*x00, *x01, *x10, *x11, ty, tx));
  for (int64_t k = 1; k < channels; ++k) {
    x00 += stride;
    x01 += stride;
    x10 += stride;
    x11 += stride;
    state.update(bilinear<T>(*x00, *x01, *x10, *x11, ty, tx), k, scale);
  }
  labels[out] = state.index;
  max_prob[out] = state.max_prob();
  best[out] = state.best;
}

}  // namespace densevl
