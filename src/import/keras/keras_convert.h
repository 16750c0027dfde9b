// Keras -> canonical conversions: weight layouts and padding rules. Each one is a named,
// separately tested function (tests/unit/test_keras.cpp); the importer never
// transposes or pads ad hoc.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "anvil/tensor.h"

namespace anvil::keras {

// ---------------------------------------------------------------- weights

/// Conv1D/2D/3D kernel (k1, ..., kn, C_in/groups, C_out)  ->  (C_out, C_in/groups, k1, ..., kn)
/// (Keras HWIO -> canonical OIHW).
Tensor conv_kernel_to_oihw(const Tensor& k);

/// DepthwiseConv2D kernel (kh, kw, C, M)  ->  (C*M, 1, kh, kw); output channel c*M + m, the
/// order Keras uses (a grouped conv with group = C).
Tensor depthwise_kernel_to_oihw(const Tensor& k);

/// Conv2DTranspose / Conv1DTranspose kernel (k1, ..., kn, C_out, C_in)  ->  (C_in, C_out, k1, ..., kn)
/// (the canonical ConvTranspose weight layout, group 1).
Tensor conv_transpose_kernel_to_iohw(const Tensor& k);

/// Dense kernel (in, out): used as the Gemm B input with transB = 0, unchanged (a copy).
Tensor dense_kernel_to_gemm(const Tensor& k);

/// Reverses the first `spatial_dims` axes of a kernel in Keras layout (k1..kn, ., .): what
/// Keras' conv_utils.convert_kernel does when a Theano-backend file is read by TF (Theano
/// stores kernels for true convolution).
Tensor flip_spatial(const Tensor& k, int spatial_dims);

// ---------------------------------------------------------------- padding

struct Pads {
  int64_t begin = 0, end = 0;
  bool operator==(const Pads& o) const { return begin == o.begin && end == o.end; }
};

/// Effective kernel extent with dilation: (k - 1) * d + 1.
int64_t effective_kernel(int64_t k, int64_t d);

/// TensorFlow / Keras-on-TF "same": output ceil(in / s); total = max((out-1)*s + keff - in, 0),
/// begin = total / 2 (floor), end = total - begin (the extra cell goes at the end).
Pads tf_same_pads(int64_t in, int64_t k, int64_t s, int64_t d = 1);

/// Keras-on-Theano convolution "same" (border_mode "half"): pad keff/2 on both sides, then
/// Keras crops the output to ceil(in / s). Returned as begin = keff/2 and the end padding
/// that yields exactly that cropped output.
Pads theano_same_conv_pads(int64_t in, int64_t k, int64_t s, int64_t d = 1);

/// Keras-on-Theano pooling "same": pad = k-2 (k odd and > 2) or k-1 on both sides,
/// ignore_border, then crop to ceil(in / s). Returned as begin = pad and the end padding that
/// gives the cropped output size.
Pads theano_same_pool_pads(int64_t in, int64_t k, int64_t s);

/// Output length of a Keras Conv*Transpose (keras.utils.conv_utils.deconv_length):
/// padding "valid" / "same" / "full", output_padding < 0 means None.
int64_t deconv_length(int64_t in, int64_t k, int64_t s, const std::string& padding, int64_t output_padding,
                      int64_t d = 1);

/// Pads of a ConvTranspose (in the forward-conv sense, as ONNX) that give output length
/// `out`; negative end padding is returned as output_padding.
struct TransposePads {
  Pads pads;
  int64_t output_padding = 0;
};
TransposePads conv_transpose_pads(int64_t in, int64_t k, int64_t s, int64_t d, int64_t out, bool theano_same,
                                  const std::string& padding);

}  // namespace anvil::keras
