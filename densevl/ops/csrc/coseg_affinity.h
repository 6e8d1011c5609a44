// Co-segmentation affinity, shared by the C++ CPU path and the CUDA path.
//
//   affinity[i, p, j] = max_q  (f_ip . f_jq) * w_jq
//
// The similarity matrix is symmetric, so only image pairs i <= j are multiplied (tiles of
// coseg_tiling.h): the row maxima of a tile, weighted by w_j, are the affinities of image i's
// patches to images j; its column maxima, weighted by w_i, those of image j's patches to image i.
// Each path supplies its own loops for the two reductions; the per-element arithmetic below and
// the tiling are the same for both.
#pragma once

#include "common.h"

namespace densevl {

// One similarity weighted by the weight of the patch it is compared with.
template <typename T>
DENSEVL_HOST_DEVICE T weighted_similarity(T dot, T weight) {
  return dot * weight;
}

}  // namespace densevl
