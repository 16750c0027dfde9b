// Keras -> canonical conversions: weight layouts and padding rules. Each one is a named,
// separately tested function (tests/unit/test_keras.cpp); the importer never
// transposes or pads ad hoc.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "anvil/tensor.h"
#include "import/common/padding.h"

namespace anvil::keras {

// ---------------------------------------------------------------- weights

/// Conv1D/2D/3D kernel (k1, ..., kn, C_in/groups, C_out)  ->  (C_out, C_in/groups, k1, ..., kn)
/// (Keras HWIO -> canonical OIHW).
Tensor conv_kernel_to_oihw(const Tensor& k);

/// DepthwiseConv2D kernel (kh, kw, C, M)  ->  (C*M, 1, kh, kw); output channel c*M + m, the
/// order Keras uses (a grouped conv with group = C).
Tensor depthwise_kernel_to_oihw(const Tensor& k);

/// Conv2DTranspose / Conv1DTranspose kernel (k1, ..., kn, C_out, C_in)  ->  (C_in, C_out, k1, ...,
/// kn) (the canonical ConvTranspose weight layout, group 1).
Tensor conv_transpose_kernel_to_iohw(const Tensor& k);

/// Dense kernel (in, out): used as the Gemm B input with transB = 0, unchanged (a copy).
Tensor dense_kernel_to_gemm(const Tensor& k);

/// Reverses the first `spatial_dims` axes of a kernel in Keras layout (k1..kn, ., .): what
/// Keras' conv_utils.convert_kernel does when a Theano-backend file is read by TF (Theano
/// stores kernels for true convolution).
Tensor flip_spatial(const Tensor& k, int spatial_dims);

// ---------------------------------------------------------------- padding

// Keras's padding rules are the importers' common ones (import/common/padding.h): TF "same",
// Theano "same" for convolutions and pools, Conv*Transpose output length and pads.
using imp::conv_transpose_pads;
using imp::deconv_length;
using imp::effective_kernel;
using imp::Pads;
using imp::theano_same_conv_pads;
using imp::theano_same_pool_pads;
using imp::TransposePads;

/// TensorFlow / Keras-on-TF "same": output ceil(in / s); total = max((out-1)*s + keff - in, 0),
/// begin = total / 2 (floor), end = total - begin (the extra cell goes at the end).
inline Pads tf_same_pads(int64_t in, int64_t k, int64_t s, int64_t d = 1) {
  return imp::same_pads(in, k, s, d, true);
}

}  // namespace anvil::keras
