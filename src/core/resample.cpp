// Separable triangle-filter resampling: see resample.h for the filter's definition.
#include "core/resample.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>

#include "anvil/error.h"

namespace anvil {
namespace {

// The taps of one axis: output o reads `count[o]` consecutive input pixels from `first[o]`
// with weights `w[offset[o] ..]` (edge repeats are folded into the edge pixel's weight).
struct Taps {
  std::vector<int> first, count;
  std::vector<size_t> offset;
  std::vector<double> w;
};

Taps make_taps(int in, int out) {
  Taps t;
  t.first.resize(static_cast<size_t>(out));
  t.count.resize(static_cast<size_t>(out));
  t.offset.resize(static_cast<size_t>(out));
  const double scale = static_cast<double>(in) / out;
  const double support = std::max(1.0, scale);
  std::vector<double> acc;
  for (int o = 0; o < out; ++o) {
    const double u = (o + 0.5) * scale;
    // Pixels i with |i + 0.5 - u| < support.
    const int64_t lo = static_cast<int64_t>(std::floor(u - support - 0.5));
    const int64_t hi = static_cast<int64_t>(std::ceil(u + support - 0.5));
    const int64_t a = std::clamp<int64_t>(lo, 0, in - 1);
    const int64_t b = std::clamp<int64_t>(hi, 0, in - 1);
    acc.assign(static_cast<size_t>(b - a + 1), 0.0);
    double sum = 0;
    for (int64_t i = lo; i <= hi; ++i) {
      const double wt = 1.0 - std::fabs((static_cast<double>(i) + 0.5 - u) / support);
      if (wt <= 0) continue;
      acc[static_cast<size_t>(std::clamp<int64_t>(i, 0, in - 1) - a)] += wt;
      sum += wt;
    }
    // sum >= 0.5: the nearest pixel is within 0.5 of u, hence weighs at least 1 - 0.5 / s.
    t.first[static_cast<size_t>(o)] = static_cast<int>(a);
    t.count[static_cast<size_t>(o)] = static_cast<int>(acc.size());
    t.offset[static_cast<size_t>(o)] = t.w.size();
    for (double v : acc) t.w.push_back(v / sum);
  }
  return t;
}

}  // namespace

std::vector<float> resize_hwc(const std::vector<float>& src, int w, int h, int channels, int out_w,
                              int out_h) {
  if (w < 1 || h < 1 || channels < 1 || out_w < 1 || out_h < 1 ||
      src.size() != static_cast<size_t>(w) * static_cast<size_t>(h) * static_cast<size_t>(channels))
    throw Error("resize_hwc: bad sizes " + std::to_string(w) + "x" + std::to_string(h) + "x" +
                std::to_string(channels) + " -> " + std::to_string(out_w) + "x" +
                std::to_string(out_h));
  const size_t C = static_cast<size_t>(channels);
  // Columns (the width) first.
  std::vector<float> mid;
  if (out_w == w) {
    mid = src;
  } else {
    const Taps tx = make_taps(w, out_w);
    mid.resize(static_cast<size_t>(out_w) * static_cast<size_t>(h) * C);
    for (size_t y = 0; y < static_cast<size_t>(h); ++y) {
      const float* row = src.data() + y * static_cast<size_t>(w) * C;
      float* dst = mid.data() + y * static_cast<size_t>(out_w) * C;
      for (size_t x = 0; x < static_cast<size_t>(out_w); ++x) {
        const float* in = row + static_cast<size_t>(tx.first[x]) * C;
        const double* wt = tx.w.data() + tx.offset[x];
        for (size_t c = 0; c < C; ++c) {
          double s = 0;
          for (int k = 0; k < tx.count[x]; ++k) s += wt[k] * in[static_cast<size_t>(k) * C + c];
          dst[x * C + c] = static_cast<float>(s);
        }
      }
    }
  }
  if (out_h == h) return mid;
  // Then the rows: each output row is a weighted sum of whole input rows.
  const Taps ty = make_taps(h, out_h);
  const size_t row_len = static_cast<size_t>(out_w) * C;
  std::vector<float> out(row_len * static_cast<size_t>(out_h));
  std::vector<double> acc(row_len);
  for (size_t y = 0; y < static_cast<size_t>(out_h); ++y) {
    std::fill(acc.begin(), acc.end(), 0.0);
    const double* wt = ty.w.data() + ty.offset[y];
    for (int k = 0; k < ty.count[y]; ++k) {
      const float* in =
          mid.data() + (static_cast<size_t>(ty.first[y]) + static_cast<size_t>(k)) * row_len;
      for (size_t i = 0; i < row_len; ++i) acc[i] += wt[k] * in[i];
    }
    float* dst = out.data() + y * row_len;
    for (size_t i = 0; i < row_len; ++i) dst[i] = static_cast<float>(acc[i]);
  }
  return out;
}

}  // namespace anvil
