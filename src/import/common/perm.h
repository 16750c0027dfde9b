// Permutations of tensor axes, as every importer uses them to track layouts.
//
// Contract: a permutation p of rank r holds each of 0..r-1 once; "transpose(x, p)" is the
// ONNX Transpose (result axis i is x's axis p[i]). An empty permutation means "no change"
// wherever a layout is tracked (is_identity_perm({}) is true). Pure functions, no checks
// beyond what is documented; is_perm validates untrusted input.
#pragma once

#include <cstdint>
#include <vector>

#include "anvil/tensor.h"

namespace anvil::imp {

using Perm = std::vector<int>;

/// (0, 1, ..., r-1).
Perm identity_perm(int rank);
/// True for (0, 1, ..., r-1) and for the empty permutation.
bool is_identity_perm(const Perm& p);
/// q with q[p[i]] = i: transpose(transpose(x, p), q) = x (core inverse_permutation: throws
/// anvil::Error when p is not a permutation).
Perm inverse_perm(const Perm& p);
/// c with transpose(transpose(x, a), b) = transpose(x, c), i.e. c[i] = a[b[i]]. An empty `a`
/// stands for the identity.
Perm compose_perm(const Perm& a, const Perm& b);
/// The shape of transpose(x, p) for x of shape s (empty p: s itself).
Shape apply_perm(const Shape& s, const Perm& p);
/// True when `p` is a permutation of 0..rank-1 (for values read from files).
bool is_perm(const std::vector<int64_t>& p, int rank);
/// Canonical channels-first (N, C, d1..dn) -> channels-last (N, d1..dn, C): (0, 2, .., r-1, 1).
Perm channels_last_perm(int rank);

}  // namespace anvil::imp
