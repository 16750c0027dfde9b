// Small helpers around oneDNN for the cpu backend (src/backend/cpu/).
#pragma once

#include <cstdint>
#include <dnnl.hpp>
#include <string>
#include <vector>

#include "anvil/tensor.h"

namespace anvil::cpu {

using dnnl::memory;
using Dims = memory::dims;

/// oneDNN data type of an Anvil dtype; undef when oneDNN has none we use.
inline memory::data_type dnnl_type(DType t) {
  switch (t) {
    case DType::f32:
      return memory::data_type::f32;
    case DType::bf16:
      return memory::data_type::bf16;
    case DType::f16:
      return memory::data_type::f16;
    default:
      return memory::data_type::undef;
  }
}

/// Row-major (plain) descriptor of a shape; a rank-0 tensor is described as (1).
inline memory::desc plain_md(const Shape& s, memory::data_type dt) {
  Dims d(s.begin(), s.end());
  if (d.empty()) d.push_back(1);
  Dims st(d.size(), 1);
  for (size_t i = d.size(); i-- > 1;) st[i - 1] = st[i] * d[i];
  return memory::desc(d, dt, st);
}

/// `s` left-padded with 1s to `rank` dims.
inline Shape pad_rank(const Shape& s, size_t rank) {
  Shape r(rank - s.size(), 1);
  r.insert(r.end(), s.begin(), s.end());
  return r;
}

/// True when the descriptor is the row-major layout of its dims.
inline bool is_plain(const memory::desc& md) {
  const auto& d = md.data;
  if (d.format_kind != dnnl_blocked || d.format_desc.blocking.inner_nblks != 0) return false;
  int64_t stride = 1;
  for (int i = d.ndims; i-- > 0;) {
    if (d.dims[i] != 1 && d.format_desc.blocking.strides[i] != stride) return false;
    stride *= d.dims[i];
  }
  return d.offset0 == 0;
}

/// "nChw16c"-like text for profiles and docs: the blocking of a descriptor.
inline std::string layout_name(const memory::desc& md) {
  const auto& d = md.data;
  if (d.format_kind != dnnl_blocked) return "opaque";
  if (is_plain(md)) return "plain";
  std::string s = "blocked";
  for (int i = 0; i < d.format_desc.blocking.inner_nblks; ++i)
    s += ":" + std::to_string(d.format_desc.blocking.inner_idxs[i]) + "x" +
         std::to_string(d.format_desc.blocking.inner_blks[i]);
  return s;
}

}  // namespace anvil::cpu
