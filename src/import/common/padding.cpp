#include "import/common/padding.h"

#include <algorithm>

#include "anvil/error.h"

namespace anvil::imp {

namespace {
int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
}  // namespace

int64_t effective_kernel(int64_t k, int64_t d) { return (k - 1) * d + 1; }

void check_window(int64_t in, int64_t k, int64_t s, int64_t d) {
  constexpr int64_t kMax = int64_t{1} << 40;
  if (in < 0 || k < 1 || s < 1 || d < 1 || in > kMax || k > kMax || s > kMax || d > kMax)
    throw Error("bad window parameters (input " + std::to_string(in) + ", kernel " +
                    std::to_string(k) + ", stride " + std::to_string(s) + ", dilation " +
                    std::to_string(d) + ")",
                {}, {}, "padding");
}

Pads same_pads(int64_t in, int64_t k, int64_t s, int64_t d, bool upper) {
  check_window(in, k, s, d);
  const int64_t out = ceil_div(in, s);
  const int64_t total = std::max<int64_t>((out - 1) * s + effective_kernel(k, d) - in, 0);
  const int64_t small = total / 2, big = total - small;
  return upper ? Pads{small, big} : Pads{big, small};
}

Pads resolve_pads(Padding mode, int64_t in, int64_t k, int64_t s, int64_t d, Pads given) {
  switch (mode) {
    case Padding::Valid:
      check_window(in, k, s, d);
      return {};
    case Padding::SameUpper:
      return same_pads(in, k, s, d, true);
    case Padding::SameLower:
      return same_pads(in, k, s, d, false);
    case Padding::Explicit:
      if (given.begin < 0 || given.end < 0)
        throw Error("negative padding (" + std::to_string(given.begin) + ", " +
                        std::to_string(given.end) + ")",
                    {}, {}, "padding");
      return given;
  }
  return {};
}

int64_t window_output(int64_t in, int64_t k, int64_t s, int64_t d, bool same) {
  check_window(in, k, s, d);
  if (same) return ceil_div(in, s);
  const int64_t keff = effective_kernel(k, d);
  if (in < keff) return 0;
  return ceil_div(in - keff + 1, s);
}

Pads theano_same_conv_pads(int64_t in, int64_t k, int64_t s, int64_t d) {
  check_window(in, k, s, d);
  const int64_t keff = effective_kernel(k, d);
  const int64_t p = keff / 2;
  const int64_t theano_out = (in + 2 * p - keff) / s + 1;
  const int64_t out = std::min(theano_out, ceil_div(in, s));
  return {p, std::max<int64_t>((out - 1) * s + keff - in - p, 0)};
}

Pads theano_same_pool_pads(int64_t in, int64_t k, int64_t s) {
  check_window(in, k, s, 1);
  const int64_t p = (k > 2 && k % 2 == 1) ? k - 2 : k - 1;
  const int64_t theano_out = (in + 2 * p - k) / s + 1;
  const int64_t out = std::min(theano_out, ceil_div(in, s));
  return {p, std::max<int64_t>((out - 1) * s + k - in - p, 0)};
}

int64_t deconv_length(int64_t in, int64_t k, int64_t s, const std::string& padding,
                      int64_t output_padding, int64_t d) {
  const int64_t keff = effective_kernel(k, d);
  if (output_padding < 0) {
    if (padding == "valid") return in * s + std::max<int64_t>(keff - s, 0);
    if (padding == "full") return in * s - (s + keff - 2);
    if (padding == "same") return in * s;
    throw Error("unknown padding '" + padding + "'", {}, {}, "padding");
  }
  const int64_t pad = padding == "same" ? keff / 2 : padding == "full" ? keff - 1 : 0;
  return (in - 1) * s + keff - 2 * pad + output_padding;
}

TransposePads conv_transpose_pads(int64_t in, int64_t k, int64_t s, int64_t d, int64_t out,
                                  bool theano_same, const std::string& padding) {
  const int64_t keff = effective_kernel(k, d);
  const int64_t full = s * (in - 1) + keff;  // output length with no padding
  TransposePads r;
  if (theano_same && padding == "same") {
    r.pads.begin = keff / 2;
    int64_t end = full - r.pads.begin - out;
    if (end < 0) {
      r.output_padding = -end;
      end = 0;
    }
    r.pads.end = end;
    return r;
  }
  const int64_t total = full - out;
  if (total < 0) {
    r.output_padding = -total;
    return r;
  }
  r.pads.begin = total / 2;
  r.pads.end = total - total / 2;
  return r;
}

TransposePads backprop_input_pads(int64_t in, int64_t out, int64_t k, int64_t s, int64_t d,
                                  bool same, const Pads& given) {
  check_window(out, k, s, d);
  TransposePads r;
  r.pads = same ? same_pads(out, k, s, d) : given;
  const int64_t keff = effective_kernel(k, d);
  // Forward conv from `out` with these pads: floor((out + pb + pe - keff) / s) + 1 must be `in`.
  const int64_t fwd = (out + r.pads.begin + r.pads.end - keff) / s + 1;
  if (out + r.pads.begin + r.pads.end < keff || fwd != in)
    throw Error("input_sizes gives " + std::to_string(out) + " but a convolution of that size " +
                    "would give " + std::to_string(fwd) + ", not the gradient's " +
                    std::to_string(in),
                {}, {}, "input_sizes");
  r.output_padding = out - (s * (in - 1) + keff - r.pads.begin - r.pads.end);  // in [0, s)
  return r;
}

}  // namespace anvil::imp
