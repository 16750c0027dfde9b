#include <cmath>
#include <cstdio>

#include "anvil/verify.h"

namespace anvil {

Comparison compare_tensors(const Tensor& got, const Tensor& want, double rtol, double atol) {
  return compare_tensors(got, want, rtol, atol, /*per_element=*/true);
}

Comparison compare_tensors(const Tensor& got, const Tensor& want, double rtol, double atol,
                           bool per_element) {
  Comparison c;
  if (got.shape() != want.shape()) {
    c.shape_match = false;
    return c;
  }
  c.count = want.numel();
  for (int64_t i = 0; i < c.count; ++i) {
    const double b = want.get(i);
    if (std::isfinite(b)) c.scale = std::fmax(c.scale, std::fabs(b));
  }
  double dot = 0, ng = 0, nw = 0, worst_excess = -INFINITY;
  for (int64_t i = 0; i < c.count; ++i) {
    const double a = got.get(i), b = want.get(i);
    const bool nan_a = std::isnan(a), nan_b = std::isnan(b);
    double excess;
    if (nan_a || nan_b) {
      excess = nan_a == nan_b ? -INFINITY : INFINITY;
    } else {
      const double d = std::fabs(a - b);
      c.max_abs = std::fmax(c.max_abs, d);
      if (b != 0) c.max_rel = std::fmax(c.max_rel, d / std::fabs(b));
      excess = d - (atol + rtol * (per_element ? std::fabs(b) : c.scale));
      if (std::isinf(a) || std::isinf(b)) excess = a == b ? -INFINITY : INFINITY;
      dot += a * b;
      ng += a * a;
      nw += b * b;
    }
    if (excess > 0 && c.mismatches++ == 0) c.first_mismatch = i;
    if (excess > worst_excess) {
      worst_excess = excess;
      c.worst_index = i;
    }
  }
  if (ng > 0 && nw > 0)
    c.cosine = dot / (std::sqrt(ng) * std::sqrt(nw));
  else if (ng > 0 || nw > 0)
    c.cosine = 0;
  return c;
}

std::string Comparison::describe() const {
  if (!shape_match) return "shapes differ";
  char b[200];
  std::snprintf(b, sizeof b,
                "max_abs %.3g, max_rel %.3g, cosine %.9g, %lld of %lld outside tolerance", max_abs,
                max_rel, cosine, static_cast<long long>(mismatches), static_cast<long long>(count));
  if (mismatches) {
    std::string s = b;
    return s + " (first at flat index " + std::to_string(first_mismatch) + ")";
  }
  return b;
}

}  // namespace anvil
