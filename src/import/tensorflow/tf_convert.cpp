#include "import/tensorflow/tf_convert.h"

#include <algorithm>
#include <limits>

#include "anvil/error.h"

namespace anvil::tf {

namespace {

bool bit(int64_t mask, size_t i) { return ((static_cast<uint64_t>(mask) >> i) & 1u) != 0; }

// One input dim's slice entry.
struct Dense {
  int64_t b = 0, e = 0, s = 1;
  bool bm = true, em = true, shrink = false;
};

// Sparse entries -> dense (per input dim) entries, and the final shape's sources (>= 0: a
// dense dim, -1: a new axis). An implicit ellipsis follows the last entry when there is none.
struct DenseSpec {
  std::vector<Dense> dense;
  std::vector<int> gather;
};

DenseSpec to_dense(int rank, const std::vector<int64_t>& begin, const std::vector<int64_t>& end,
                   const std::vector<int64_t>& strides, int64_t begin_mask, int64_t end_mask,
                   int64_t ellipsis_mask, int64_t new_axis_mask, int64_t shrink_axis_mask) {
  const size_t n = begin.size();
  DenseSpec r;
  r.dense.resize(static_cast<size_t>(rank));
  std::vector<Dense>& dense = r.dense;
  std::vector<int>& gather = r.gather;
  int full = 0;
  bool saw_ellipsis = false;
  for (size_t i = 0; i < n; ++i) {
    if (bit(ellipsis_mask, i)) {
      saw_ellipsis = true;
      int after = 0;  // entries after the ellipsis that consume a dim
      for (size_t j = i + 1; j < n; ++j)
        if (!bit(new_axis_mask, j)) ++after;
      int next = rank - after;
      if (next < full)
        throw Error("the slice has more entries than the input has dims", {}, {}, "begin");
      for (; full < next; ++full) gather.push_back(full);
      continue;
    }
    if (bit(new_axis_mask, i)) {
      gather.push_back(-1);
      continue;
    }
    if (full >= rank)
      throw Error("the slice has more entries (" + std::to_string(n) +
                      ") than the input has dims (" + std::to_string(rank) + ")",
                  {}, {}, "begin");
    Dense& d = dense[static_cast<size_t>(full)];
    d.b = begin[i];
    d.e = end[i];
    d.s = strides[i];
    d.bm = bit(begin_mask, i);
    d.em = bit(end_mask, i);
    d.shrink = bit(shrink_axis_mask, i);
    if (!d.shrink) gather.push_back(full);
    ++full;
  }
  if (!saw_ellipsis)
    for (; full < rank; ++full) gather.push_back(full);

  return r;
}

}  // namespace

StridedSliceSpec strided_slice(const Shape& in, const std::vector<int64_t>& begin,
                               const std::vector<int64_t>& end, const std::vector<int64_t>& strides,
                               int64_t begin_mask, int64_t end_mask, int64_t ellipsis_mask,
                               int64_t new_axis_mask, int64_t shrink_axis_mask) {
  const size_t n = begin.size();
  if (end.size() != n || strides.size() != n)
    throw Error("begin, end and strides must have the same length (" + std::to_string(n) + ", " +
                    std::to_string(end.size()) + ", " + std::to_string(strides.size()) + ")",
                {}, {}, "strides");
  if (n > 64) throw Error("more than 64 slice entries", {}, {}, "begin");
  int ellipses = 0;
  for (size_t i = 0; i < n; ++i) ellipses += bit(ellipsis_mask, i);
  if (ellipses > 1) throw Error("more than one ellipsis", {}, {}, "ellipsis_mask");

  const int rank = static_cast<int>(in.size());
  DenseSpec ds = to_dense(rank, begin, end, strides, begin_mask, end_mask, ellipsis_mask,
                          new_axis_mask, shrink_axis_mask);
  std::vector<Dense>& dense = ds.dense;
  const std::vector<int>& gather = ds.gather;

  StridedSliceSpec r;
  Shape dense_len(static_cast<size_t>(rank));
  for (int k = 0; k < rank; ++k) {
    Dense& d = dense[static_cast<size_t>(k)];
    const int64_t dim = in[static_cast<size_t>(k)];
    if (d.s == 0) throw Error("stride 0 for dim " + std::to_string(k), {}, {}, "strides");
    if (d.shrink) {
      int64_t x = d.b < 0 ? d.b + dim : d.b;
      if (x < 0 || x >= dim)
        throw Error("index " + std::to_string(d.b) + " out of range for dim " + std::to_string(k) +
                        " of size " + std::to_string(dim),
                    {}, {}, "begin");
      r.starts.push_back(x);
      r.ends.push_back(x + 1);
      r.steps.push_back(1);
      dense_len[static_cast<size_t>(k)] = 1;
      continue;
    }
    if (d.s == std::numeric_limits<int64_t>::min())
      throw Error("stride out of range", {}, {}, "strides");
    const bool pos = d.s > 0;
    // TF's canonical begin/end: masks pick the whole range; else negative counts from the
    // back, then clamped to [0, dim] (positive stride) or [-1, dim - 1] (negative stride).
    auto canon = [&](int64_t x, bool masked, bool is_begin) -> int64_t {
      if (masked) return is_begin ? (pos ? 0 : dim - 1) : (pos ? dim : -1);
      if (x < 0) x = x < -dim ? (pos ? 0 : -1) : x + dim;
      return pos ? std::clamp<int64_t>(x, 0, dim) : std::clamp<int64_t>(x, -1, dim - 1);
    };
    const int64_t b = canon(d.b, d.bm, true), e = canon(d.e, d.em, false);
    int64_t len = 0;
    if (pos && e > b) len = (e - b + d.s - 1) / d.s;
    if (!pos && b > e) len = (b - e + (-d.s) - 1) / (-d.s);
    dense_len[static_cast<size_t>(k)] = len;
    r.starts.push_back(b);
    // Canonical Slice reads a negative end as counting from the back: "before element 0"
    // is written as -dim - 1.
    r.ends.push_back(!pos && e < 0 ? -dim - 1 : e);
    r.steps.push_back(d.s);
  }
  r.sliced = dense_len;
  for (int gi : gather) r.final_shape.push_back(gi < 0 ? 1 : dense_len[static_cast<size_t>(gi)]);
  return r;
}

}  // namespace anvil::tf
