// Padding rules of the source frameworks, turned into the explicit per-side pads of the
// canonical ops (Conv, ConvTranspose, pools). One function per rule, each table-tested in
// tests/unit/import_common_test.cpp; importers never recompute padding ad hoc.
//
// Contract: all sizes are for ONE spatial dimension. `in` = input length, `k` = kernel
// length, `s` = stride, `d` = dilation; keff = (k - 1) * d + 1. Functions that take window
// parameters throw anvil::Error (field "padding") when in < 0, k < 1, s < 1, d < 1 or a value
// exceeds 2^40; they never return negative pads.
#pragma once

#include <cstdint>
#include <string>

namespace anvil::imp {

struct Pads {
  int64_t begin = 0, end = 0;
  bool operator==(const Pads& o) const { return begin == o.begin && end == o.end; }
};

/// How a source framework names its padding.
enum class Padding {
  Valid,      // no padding
  SameUpper,  // TF / Keras / TFLite SAME, ONNX SAME_UPPER: the extra cell at the end
  SameLower,  // ONNX SAME_LOWER: the extra cell at the beginning
  Explicit,   // the pads the file gives
};

/// Effective kernel extent with dilation: (k - 1) * d + 1.
int64_t effective_kernel(int64_t k, int64_t d = 1);

/// Throws anvil::Error (field "padding") for bad window parameters.
void check_window(int64_t in, int64_t k, int64_t s, int64_t d = 1);

/// SAME (TF's GetWindowedOutputSize): out = ceil(in / s); total = max((out - 1) * s + keff -
/// in, 0); SameUpper: begin = total / 2, end = total - begin; SameLower: the two swapped.
Pads same_pads(int64_t in, int64_t k, int64_t s, int64_t d = 1, bool upper = true);

/// Pads of one dimension for `mode` (Explicit returns `given`, checked non-negative).
Pads resolve_pads(Padding mode, int64_t in, int64_t k, int64_t s, int64_t d = 1, Pads given = {});

/// Output length of a window op: SAME ceil(in / s); VALID ceil((in - keff + 1) / s), 0 when
/// the window does not fit.
int64_t window_output(int64_t in, int64_t k, int64_t s, int64_t d, bool same);

/// Keras-on-Theano convolution "same" (border_mode "half"): pad keff/2 on both sides, then
/// Keras crops the output to ceil(in / s). Returned as begin = keff/2 and the end padding
/// that yields exactly that cropped output.
Pads theano_same_conv_pads(int64_t in, int64_t k, int64_t s, int64_t d = 1);

/// Keras-on-Theano pooling "same": pad = k-2 (k odd and > 2) or k-1 on both sides,
/// ignore_border, then crop to ceil(in / s). Returned as begin = pad and the end padding that
/// gives the cropped output size.
Pads theano_same_pool_pads(int64_t in, int64_t k, int64_t s);

/// A ConvTranspose's pads (in the forward-conv sense, as ONNX has them) and output_padding.
struct TransposePads {
  Pads pads;
  int64_t output_padding = 0;
};

/// Output length of a Keras Conv*Transpose (keras.utils.conv_utils.deconv_length): padding
/// "valid" / "same" / "full"; output_padding < 0 means None.
int64_t deconv_length(int64_t in, int64_t k, int64_t s, const std::string& padding,
                      int64_t output_padding, int64_t d = 1);

/// Pads of a ConvTranspose that give output length `out` from input length `in` (Keras
/// Conv*Transpose; `theano_same` for Theano's "same"): the total s*(in-1) + keff - out is
/// split begin = total/2, end = total - begin; a negative total becomes output_padding.
TransposePads conv_transpose_pads(int64_t in, int64_t k, int64_t s, int64_t d, int64_t out,
                                  bool theano_same, const std::string& padding);

/// TF's Conv2DBackpropInput as a ConvTranspose: `in` = the gradient's length, `out` = the
/// requested input_sizes entry; SAME pads are those of the forward conv from `out`, otherwise
/// `given` (VALID: zeros). Throws anvil::Error (field "input_sizes") when no forward conv from
/// `out` gives `in`.
TransposePads backprop_input_pads(int64_t in, int64_t out, int64_t k, int64_t s, int64_t d,
                                  bool same, const Pads& given = {});

}  // namespace anvil::imp
