// One activation arena per executable: every buffer gets an offset from its lifetime (shared
// by the cpu and cuda backends).
#pragma once

#include <algorithm>
#include <cstddef>
#include <numeric>
#include <utility>
#include <vector>

namespace anvil {

/// Places buffers (each with `bytes` and a lifetime `first`..`last`, inclusive, in steps) into
/// one arena: largest first, each at the lowest offset not used by a placed buffer whose
/// lifetime overlaps its own; sizes rounded up to `align`. Writes each buffer's `offset` and
/// returns the arena's size.
template <class Buffer>
size_t place_buffers(std::vector<Buffer>& bufs, size_t align) {
  auto rounded = [align](size_t n) { return (n + align - 1) / align * align; };
  std::vector<size_t> order(bufs.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return bufs[a].bytes > bufs[b].bytes; });
  std::vector<size_t> placed;
  size_t total = 0;
  for (size_t i : order) {
    auto& b = bufs[i];
    const size_t size = rounded(b.bytes);
    std::vector<std::pair<size_t, size_t>> busy;  // [offset, end) of overlapping lifetimes
    for (size_t j : placed) {
      const auto& o = bufs[j];
      if (o.first <= b.last && b.first <= o.last)
        busy.push_back({o.offset, o.offset + rounded(o.bytes)});
    }
    std::sort(busy.begin(), busy.end());
    size_t off = 0;
    for (auto& [s, e] : busy) {
      if (off + size <= s) break;
      off = std::max(off, e);
    }
    b.offset = off;
    total = std::max(total, off + size);
    placed.push_back(i);
  }
  return total;
}

}  // namespace anvil
