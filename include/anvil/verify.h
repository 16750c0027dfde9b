// Comparing tensors the way verification needs: allclose, error magnitudes, cosine.
#pragma once

#include <cstdint>
#include <string>

#include "anvil/tensor.h"

namespace anvil {

/// How `got` differs from `want` (the reference), element by element.
struct Comparison {
  bool shape_match = true;
  int64_t count = 0;           // elements compared
  int64_t mismatches = 0;      // elements outside atol + rtol * |want| (NaN vs number counts)
  int64_t first_mismatch = -1; // flat index, -1 when none
  int64_t worst_index = -1;    // flat index of the largest excess over the tolerance
  double max_abs = 0;          // max |got - want| over non-NaN pairs
  double max_rel = 0;          // max |got - want| / |want| over pairs with want != 0
  double cosine = 1;           // cosine similarity of the two tensors (1 when both are zero)

  /// numpy.allclose(got, want, rtol, atol, equal_nan=True) with equal shapes.
  bool ok() const { return shape_match && mismatches == 0; }
  /// One line: "max_abs 1.2e-07, max_rel 3e-06, cosine 1, 0 of 96 outside tolerance".
  std::string describe() const;
};

/// Compares any two tensors of equal shape (any dtypes; values read as double).
Comparison compare_tensors(const Tensor& got, const Tensor& want, double rtol, double atol);

}  // namespace anvil
