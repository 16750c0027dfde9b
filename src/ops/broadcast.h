// numpy / ONNX broadcasting for reference kernels: the shape rule and an index iterator that
// walks an output shape and gives, for every element, the flat offset in each input.
// Private to the library (src/), shared by the reference op files.
#pragma once

#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "anvil/tensor.h"

namespace anvil::ref {

/// Multidirectional (numpy) broadcast of several shapes, right-aligned: each dimension is
/// equal, or 1 in all but one shape. nullopt when the shapes are incompatible. A 0-sized
/// dimension broadcasts with 1 (giving 0) like numpy.
inline std::optional<Shape> broadcast_shapes(std::span<const Shape> shapes) {
  size_t rank = 0;
  for (const auto& s : shapes) rank = std::max(rank, s.size());
  Shape out(rank, 1);
  for (const auto& s : shapes) {
    const size_t off = rank - s.size();
    for (size_t i = 0; i < s.size(); ++i) {
      int64_t d = s[i], &o = out[off + i];
      if (d < 0) return std::nullopt;
      if (d == o || d == 1) continue;
      if (o == 1) {
        o = d;
        continue;
      }
      return std::nullopt;
    }
  }
  return out;
}

inline std::optional<Shape> broadcast_shapes(std::initializer_list<Shape> shapes) {
  return broadcast_shapes(std::span<const Shape>(shapes.begin(), shapes.size()));
}

/// Unidirectional broadcast: true when `from` broadcasts to exactly `to` (ONNX PRelu slope,
/// Expand's input against its output, every input of an elementwise op against its output).
inline bool broadcasts_to(const Shape& from, const Shape& to) {
  if (from.size() > to.size()) return false;
  const size_t off = to.size() - from.size();
  for (size_t i = 0; i < from.size(); ++i)
    if (from[i] != 1 && from[i] != to[off + i]) return false;
  return true;
}

/// "(2, 3) vs (4,)" for error messages.
inline std::string shapes_str(std::span<const Shape> shapes) {
  std::string r;
  for (size_t i = 0; i < shapes.size(); ++i) r += (i ? " vs " : "") + shape_str(shapes[i]);
  return r;
}

/// Element strides of `in` seen with `out`'s rank: 0 on broadcast (size-1 or missing)
/// dimensions. Requires broadcasts_to(in, out).
inline std::vector<int64_t> broadcast_strides(const Shape& in, const Shape& out) {
  const size_t r = out.size(), off = r - in.size();
  std::vector<int64_t> st(r, 0);
  int64_t s = 1;
  for (size_t i = in.size(); i-- > 0;) {
    st[off + i] = (in[i] == 1 && out[off + i] != 1) ? 0 : s;
    s *= in[i];
  }
  return st;
}

/// Calls f(out_index, const int64_t* in_offsets) for every element of `out` in row-major
/// order, where in_offsets[k] is the flat offset of the matching element of input k.
/// Every input shape must broadcast to `out` (check with broadcasts_to first).
template <class F>
void for_each_broadcast(const Shape& out, std::span<const Shape> ins, F&& f) {
  const int64_t n = shape_numel(out);
  if (n == 0) return;
  const size_t r = out.size(), k = ins.size();
  std::vector<std::vector<int64_t>> st;
  st.reserve(k);
  for (const auto& s : ins) st.push_back(broadcast_strides(s, out));
  std::vector<int64_t> idx(r, 0), off(k, 0);
  for (int64_t o = 0; o < n; ++o) {
    f(o, static_cast<const int64_t*>(off.data()));
    for (size_t d = r; d-- > 0;) {
      if (++idx[d] < out[d]) {
        for (size_t j = 0; j < k; ++j) off[j] += st[j][d];
        break;
      }
      for (size_t j = 0; j < k; ++j) off[j] -= st[j][d] * (out[d] - 1);
      idx[d] = 0;
    }
  }
}

template <class F>
void for_each_broadcast(const Shape& out, std::initializer_list<Shape> ins, F&& f) {
  for_each_broadcast(out, std::span<const Shape>(ins.begin(), ins.size()), std::forward<F>(f));
}

/// Row-major element strides of a shape.
inline std::vector<int64_t> strides_of(const Shape& s) {
  std::vector<int64_t> st(s.size(), 1);
  for (size_t i = s.size(); i-- > 1;) st[i - 1] = st[i] * s[i];
  return st;
}

/// Product of dims [begin, end).
inline int64_t prod(const Shape& s, size_t begin, size_t end) {
  int64_t p = 1;
  for (size_t i = begin; i < end && i < s.size(); ++i) p *= s[i];
  return p;
}

}  // namespace anvil::ref
