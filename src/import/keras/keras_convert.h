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

// ---------------------------------------------------------------- recurrent weights

/// Gate order maps: `order[g]` is the Keras gate block that becomes canonical (ONNX) gate g.
/// LSTM: Keras i, f, c, o -> ONNX i, o, f, c. GRU: Keras z, r, h = ONNX z, r, h. SimpleRNN: one.
inline const std::vector<int> kLstmGateOrder{0, 3, 1, 2};
inline const std::vector<int> kGruGateOrder{0, 1, 2};
inline const std::vector<int> kRnnGateOrder{0};

/// A recurrent kernel, Keras (in, G*H) (kernel or recurrent_kernel, gate blocks along the
/// columns in Keras's order)  ->  ONNX W or R (1, G*H, in), gate blocks in ONNX's order.
Tensor rnn_kernel_to_onnx(const Tensor& k, const std::vector<int>& order);

/// Recurrent biases, Keras (G*H) input bias and (G*H) recurrent bias (an undefined tensor:
/// none)  ->  ONNX B (1, 2*G*H): [Wb (ONNX gate order), Rb (ONNX gate order)].
Tensor rnn_bias_to_onnx(const Tensor& input_bias, const Tensor& recurrent_bias,
                        const std::vector<int>& order, int64_t hidden);

/// Stacks per-direction ONNX weights (1, ...) into (2, ...) (forward, backward).
Tensor stack_directions(const Tensor& fw, const Tensor& bw);

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
