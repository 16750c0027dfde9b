// Reference kernels for tensor manipulation (ONNX opset 13-17 semantics, any dtype, bytes
// moved): Concat, Split, Slice, Transpose, Pad, Tile, DepthToSpace, SpaceToDepth. The
// index-driven ops (Gather, GatherElements, ScatterND, OneHot, NonZero, CumSum) are in
// index.cpp.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "anvil/error.h"
#include "anvil/ops.h"
#include "core/strings.h"
#include "ops/broadcast.h"
#include "ops/ref_util.h"

namespace anvil {
namespace {

using namespace ref;

// --- Concat ------------------------------------------------------------------------------------

template <class Ctx>
Shape concat_plan(const Ctx& c, const std::vector<Shape>& shapes, int64_t axis_attr) {
  if (shapes.empty()) c.fail("inputs", "needs at least one input");
  const Shape& s0 = shapes[0];
  if (s0.empty()) c.fail("inputs", "cannot concatenate scalars (rank 0)");
  const int64_t r = static_cast<int64_t>(s0.size());
  const size_t axis = static_cast<size_t>(normalize_axis(c, axis_attr, r));
  Shape out = s0;
  out[axis] = 0;
  for (size_t k = 0; k < shapes.size(); ++k) {
    const Shape& s = shapes[k];
    bool ok = s.size() == s0.size();
    for (size_t i = 0; ok && i < s.size(); ++i) ok = i == axis || s[i] == s0[i];
    if (!ok)
      c.fail("inputs", "input " + std::to_string(k) + " has shape " + shape_str(s) +
                           ", incompatible with " + shape_str(s0) + " for concatenation on axis " +
                           std::to_string(axis_attr));
    out[axis] += s[axis];
  }
  return out;
}

OpDef make_concat() {
  OpDef d;
  d.name = "Concat";
  d.category = "tensor";
  d.doc = "concatenates 1+ inputs along `axis` (negative ok)";
  d.min_inputs = 1;
  d.max_inputs = -1;
  d.attrs = {{"axis", AttrType::Int, "axis to concatenate on (required)"}};
  d.infer = [](InferContext& c) {
    std::vector<Shape> shapes;
    for (int i = 0; i < c.num_inputs(); ++i) {
      if (c.dtype(i) != c.dtype(0))
        c.fail("inputs", std::string("all inputs must have the same dtype, found ") +
                             dtype_name(c.dtype(0)) + " and " + dtype_name(c.dtype(i)));
      shapes.push_back(c.shape(i));
    }
    c.set_output(0, c.dtype(0), concat_plan(c, shapes, c.attrs().get_int("axis")));
  };
  d.reference = [](KernelContext& c) {
    std::vector<Shape> shapes;
    std::vector<const Tensor*> ts;
    for (int i = 0; i < static_cast<int>(c.inputs.size()); ++i) {
      ts.push_back(&input(c, i));
      if (ts.back()->dtype() != ts[0]->dtype()) c.fail("inputs", "inputs differ in dtype");
      shapes.push_back(ts.back()->shape());
    }
    Shape out = concat_plan(c, shapes, c.attrs().get_int("axis"));
    Tensor& y = output(c, 0, ts[0]->dtype(), out);
    const size_t axis = static_cast<size_t>(
        normalize_axis(c, c.attrs().get_int("axis"), static_cast<int64_t>(out.size())));
    const int64_t outer = prod(out, 0, axis);
    const size_t es = dtype_size(y.dtype());
    unsigned char* dst = bytes(y);
    for (int64_t o = 0; o < outer; ++o)
      for (const Tensor* t : ts) {
        size_t chunk = static_cast<size_t>(prod(t->shape(), axis, t->shape().size())) * es;
        if (chunk) std::memcpy(dst, bytes(*t) + static_cast<size_t>(o) * chunk, chunk);
        dst += chunk;
      }
  };
  return d;
}

// --- Split -------------------------------------------------------------------------------------

template <class Ctx>
std::vector<int64_t> split_plan(const Ctx& c, const Shape& in, int64_t axis_attr,
                                const std::vector<int64_t>* split, int num_outputs,
                                const Attributes& a) {
  if (in.empty()) c.fail("input", "cannot split a scalar");
  const size_t axis =
      static_cast<size_t>(normalize_axis(c, axis_attr, static_cast<int64_t>(in.size())));
  const int64_t dim = in[axis];
  std::vector<int64_t> sizes;
  if (split) {
    if (static_cast<int>(split->size()) != num_outputs)
      c.fail("split", "has " + std::to_string(split->size()) + " entries for " +
                          std::to_string(num_outputs) + " outputs");
    int64_t sum = 0;
    for (int64_t v : *split) {
      if (v < 0 || v > dim) c.fail("split", "size out of range in " + ints_str(*split));
      sum += v;
    }
    if (sum != dim)
      c.fail("split", "sizes " + ints_str(*split) + " sum to " + std::to_string(sum) +
                          ", but axis " + std::to_string(axis_attr) + " has size " +
                          std::to_string(dim));
    return *split;
  }
  if (a.has("num_outputs") && a.get_int("num_outputs") != num_outputs)
    c.fail("num_outputs", "is " + std::to_string(a.get_int("num_outputs")) + " but the node has " +
                              std::to_string(num_outputs) + " outputs");
  if (num_outputs <= 0) c.fail("outputs", "needs at least one output");
  if (dim % num_outputs == 0)
    return std::vector<int64_t>(static_cast<size_t>(num_outputs), dim / num_outputs);
  if (!a.has("num_outputs"))
    c.fail("input", "axis " + std::to_string(axis_attr) + " of size " + std::to_string(dim) +
                        " cannot be split evenly into " + std::to_string(num_outputs) + " outputs");
  // Opset 18: chunks of ceil(dim / n), the last one smaller.
  const int64_t chunk = (dim + num_outputs - 1) / num_outputs;
  int64_t left = dim;
  for (int i = 0; i < num_outputs; ++i) {
    sizes.push_back(std::min(chunk, left));
    left -= sizes.back();
  }
  return sizes;
}

OpDef make_split() {
  OpDef d;
  d.name = "Split";
  d.category = "tensor";
  d.doc = "splits along `axis` into the outputs (sizes from the optional `split` input, or equal)";
  d.min_inputs = 1;
  d.max_inputs = 2;
  d.min_outputs = 1;
  d.max_outputs = -1;
  d.attrs = {{"axis", AttrType::Int, "axis to split (default 0)"},
             {"num_outputs", AttrType::Int, "number of outputs (opset 18; uneven: last smaller)"}};
  d.infer = [](InferContext& c) {
    std::vector<int64_t> split;
    if (c.has_input(1)) split = int_values(c, c.require_constant(1, "split"), "split");
    auto sizes = split_plan(c, c.shape(0), c.attrs().get_int("axis", 0),
                            c.has_input(1) ? &split : nullptr, c.num_outputs(), c.attrs());
    const size_t axis =
        static_cast<size_t>(normalize_axis(c, c.attrs().get_int("axis", 0), c.rank(0)));
    for (int i = 0; i < c.num_outputs(); ++i) {
      Shape s = c.shape(0);
      s[axis] = sizes[static_cast<size_t>(i)];
      c.set_output(i, c.dtype(0), s);
    }
  };
  d.reference = [](KernelContext& c) {
    const Tensor& x = input(c, 0, "input");
    std::vector<int64_t> split;
    if (has_input(c, 1)) split = int_values(c, input(c, 1, "split"), "split");
    const int nout = static_cast<int>(c.outputs.size());
    auto sizes = split_plan(c, x.shape(), c.attrs().get_int("axis", 0),
                            has_input(c, 1) ? &split : nullptr, nout, c.attrs());
    const size_t axis =
        static_cast<size_t>(normalize_axis(c, c.attrs().get_int("axis", 0), x.rank()));
    const int64_t outer = prod(x.shape(), 0, axis);
    const size_t es = dtype_size(x.dtype());
    const size_t inner = static_cast<size_t>(prod(x.shape(), axis + 1, x.shape().size())) * es;
    const size_t row = static_cast<size_t>(x.shape()[axis]) * inner;
    size_t begin = 0;
    for (int i = 0; i < nout; ++i) {
      Shape s = x.shape();
      s[axis] = sizes[static_cast<size_t>(i)];
      Tensor& y = output(c, i, x.dtype(), s);
      const size_t chunk = static_cast<size_t>(s[axis]) * inner;
      for (int64_t o = 0; o < outer; ++o)
        if (chunk)
          std::memcpy(bytes(y) + static_cast<size_t>(o) * chunk,
                      bytes(x) + static_cast<size_t>(o) * row + begin, chunk);
      begin += chunk;
    }
  };
  return d;
}

// --- Slice -------------------------------------------------------------------------------------

struct SlicePlan {
  Shape out;
  std::vector<int64_t> start, step;  // per input dim
};

template <class Ctx>
SlicePlan slice_plan(const Ctx& c, const Shape& in, const std::vector<int64_t>& starts,
                     const std::vector<int64_t>& ends, const std::vector<int64_t>* axes_in,
                     const std::vector<int64_t>* steps_in) {
  const int64_t r = static_cast<int64_t>(in.size());
  if (starts.size() != ends.size())
    c.fail("ends", "starts has " + std::to_string(starts.size()) + " values, ends " +
                       std::to_string(ends.size()));
  std::vector<int64_t> axes, steps;
  if (axes_in) {
    axes = *axes_in;
    if (axes.size() != starts.size()) c.fail("axes", "must have as many values as starts");
  } else {
    if (static_cast<int64_t>(starts.size()) > r)
      c.fail("starts", "has more values than the input has dimensions");
    for (size_t i = 0; i < starts.size(); ++i) axes.push_back(static_cast<int64_t>(i));
  }
  if (steps_in) {
    steps = *steps_in;
    if (steps.size() != starts.size()) c.fail("steps", "must have as many values as starts");
  } else {
    steps.assign(starts.size(), 1);
  }
  SlicePlan p;
  p.out = in;
  p.start.assign(in.size(), 0);
  p.step.assign(in.size(), 1);
  std::vector<bool> seen(in.size(), false);
  for (size_t i = 0; i < starts.size(); ++i) {
    const size_t ax = static_cast<size_t>(normalize_axis(c, axes[i], r, "axes"));
    if (seen[ax]) c.fail("axes", "axis " + std::to_string(axes[i]) + " is repeated");
    seen[ax] = true;
    const int64_t dim = in[ax], st = steps[i];
    if (st == 0) c.fail("steps", "step must not be 0");
    int64_t s = starts[i], e = ends[i];
    if (s < 0) s = s < -dim ? -dim - 1 : s;  // keep additions away from overflow
    if (e < 0) e = e < -dim - 1 ? -dim - 2 : e;
    if (s < 0) s += dim;
    if (e < 0) e += dim;
    int64_t count;
    if (st > 0) {
      s = std::clamp<int64_t>(s, 0, dim);
      e = std::clamp<int64_t>(e, 0, dim);
      count = e > s ? (e - s - 1) / st + 1 : 0;
    } else {
      s = std::clamp<int64_t>(s, 0, dim - 1);
      e = std::clamp<int64_t>(e, -1, dim - 1);
      const int64_t ns =
          st == std::numeric_limits<int64_t>::min() ? std::numeric_limits<int64_t>::max() : -st;
      count = s > e ? (s - e - 1) / ns + 1 : 0;
    }
    p.out[ax] = std::max<int64_t>(count, 0);
    p.start[ax] = s;
    p.step[ax] = st;
  }
  return p;
}

OpDef make_slice() {
  OpDef d;
  d.name = "Slice";
  d.category = "tensor";
  d.doc = "data[starts:ends:steps] on `axes` (inputs; negative indices and steps; clamped)";
  d.min_inputs = 3;
  d.max_inputs = 5;
  d.infer = [](InferContext& c) {
    auto starts = int_values(c, c.require_constant(1, "starts"), "starts");
    auto ends = int_values(c, c.require_constant(2, "ends"), "ends");
    std::vector<int64_t> axes, steps;
    if (c.has_input(3)) axes = int_values(c, c.require_constant(3, "axes"), "axes");
    if (c.has_input(4)) steps = int_values(c, c.require_constant(4, "steps"), "steps");
    auto p = slice_plan(c, c.shape(0), starts, ends, c.has_input(3) ? &axes : nullptr,
                        c.has_input(4) ? &steps : nullptr);
    c.set_output(0, c.dtype(0), p.out);
  };
  d.reference = [](KernelContext& c) {
    const Tensor& x = input(c, 0, "data");
    auto starts = int_values(c, input(c, 1, "starts"), "starts");
    auto ends = int_values(c, input(c, 2, "ends"), "ends");
    std::vector<int64_t> axes, steps;
    if (has_input(c, 3)) axes = int_values(c, input(c, 3, "axes"), "axes");
    if (has_input(c, 4)) steps = int_values(c, input(c, 4, "steps"), "steps");
    auto p = slice_plan(c, x.shape(), starts, ends, has_input(c, 3) ? &axes : nullptr,
                        has_input(c, 4) ? &steps : nullptr);
    Tensor& y = output(c, 0, x.dtype(), p.out);
    const int64_t n = y.numel();
    const size_t r = p.out.size();
    const auto st = strides_of(x.shape());
    std::vector<int64_t> idx(r, 0);
    int64_t base = 0;
    for (size_t k = 0; k < r; ++k) base += p.start[k] * st[k];
    int64_t off = base;
    for (int64_t o = 0; o < n; ++o) {
      copy_elem(y, o, x, off);
      for (size_t k = r; k-- > 0;) {
        if (++idx[k] < p.out[k]) {
          off += p.step[k] * st[k];
          break;
        }
        if (p.out[k] > 1) off -= p.step[k] * st[k] * (p.out[k] - 1);
        idx[k] = 0;
      }
    }
  };
  return d;
}

// --- Transpose ---------------------------------------------------------------------------------

template <class Ctx>
std::vector<int> transpose_perm(const Ctx& c, const Attributes& a, size_t rank) {
  std::vector<int64_t> p;
  if (a.has("perm")) {
    p = a.get_ints("perm");
  } else {
    for (size_t i = rank; i-- > 0;) p.push_back(static_cast<int64_t>(i));
  }
  if (p.size() != rank)
    c.fail("perm", "has " + std::to_string(p.size()) + " values for a tensor of rank " +
                       std::to_string(rank));
  std::vector<bool> seen(rank, false);
  std::vector<int> r;
  for (int64_t v : p) {
    if (v < 0 || v >= static_cast<int64_t>(rank) || seen[static_cast<size_t>(v)])
      c.fail("perm", ints_str(p) + " is not a permutation of 0.." + std::to_string(rank - 1));
    seen[static_cast<size_t>(v)] = true;
    r.push_back(static_cast<int>(v));
  }
  return r;
}

OpDef make_transpose() {
  OpDef d;
  d.name = "Transpose";
  d.category = "tensor";
  d.doc = "permutes dims: out.shape[i] = in.shape[perm[i]] (perm default reversed)";
  d.attrs = {{"perm", AttrType::Ints, "permutation (default: reversed dims)"}};
  d.infer = [](InferContext& c) {
    auto p = transpose_perm(c, c.attrs(), c.shape(0).size());
    Shape out;
    for (int v : p) out.push_back(c.shape(0)[static_cast<size_t>(v)]);
    c.set_output(0, c.dtype(0), out);
  };
  d.reference = [](KernelContext& c) {
    const Tensor& x = input(c, 0, "data");
    auto p = transpose_perm(c, c.attrs(), x.shape().size());
    Tensor t = transpose(x, p);
    Tensor& y = output(c, 0, x.dtype(), t.shape());
    if (t.nbytes()) std::memcpy(y.raw(), t.raw(), t.nbytes());
  };
  return d;
}

// --- Pad ---------------------------------------------------------------------------------------

enum class PadMode { Constant, Reflect, Edge, Wrap };

struct PadPlan {
  Shape out;
  std::vector<int64_t> begin, end;  // per dim, may be negative (crop)
  PadMode mode = PadMode::Constant;
};

template <class Ctx>
PadPlan pad_plan(const Ctx& c, const Shape& in, const std::vector<int64_t>& pads,
                 const std::vector<int64_t>* axes_in, const std::string& mode) {
  const int64_t r = static_cast<int64_t>(in.size());
  PadPlan p;
  if (mode == "constant")
    p.mode = PadMode::Constant;
  else if (mode == "reflect")
    p.mode = PadMode::Reflect;
  else if (mode == "edge")
    p.mode = PadMode::Edge;
  else if (mode == "wrap")
    p.mode = PadMode::Wrap;
  else
    c.fail("mode", "must be constant, reflect, edge or wrap, found '" + mode + "'");
  std::vector<int64_t> axes;
  if (axes_in) {
    axes = *axes_in;
  } else {
    for (int64_t i = 0; i < r; ++i) axes.push_back(i);
  }
  if (pads.size() != 2 * axes.size())
    c.fail("pads", "expected " + std::to_string(2 * axes.size()) + " values, found " +
                       std::to_string(pads.size()));
  p.begin.assign(in.size(), 0);
  p.end.assign(in.size(), 0);
  std::vector<bool> seen(in.size(), false);
  for (size_t i = 0; i < axes.size(); ++i) {
    const size_t ax = static_cast<size_t>(normalize_axis(c, axes[i], r, "axes"));
    if (seen[ax]) c.fail("axes", "axis " + std::to_string(axes[i]) + " is repeated");
    seen[ax] = true;
    p.begin[ax] = pads[i];
    p.end[ax] = pads[i + axes.size()];
  }
  p.out = in;
  for (size_t k = 0; k < in.size(); ++k) {
    const int64_t b = p.begin[k], e = p.end[k], dim = in[k];
    const int64_t lim = int64_t{1} << 40;
    if (b > lim || e > lim || b < -lim || e < -lim)
      c.fail("pads", "pad too large: " + ints_str(pads));
    const int64_t o = dim + b + e;
    if (o < 0)
      c.fail("pads", "negative pads " + ints_str(pads) + " crop more than dim " +
                         std::to_string(k) + " of shape " + shape_str(in) + " holds");
    const int64_t kept = dim - std::max<int64_t>(0, -b) - std::max<int64_t>(0, -e);
    if (p.mode != PadMode::Constant && (b > 0 || e > 0) && kept <= 0)
      c.fail("pads", "cannot " + mode + "-pad dim " + std::to_string(k) + " of shape " +
                         shape_str(in) + ": nothing left to copy from");
    p.out[k] = o;
  }
  return p;
}

OpDef make_pad() {
  OpDef d;
  d.name = "Pad";
  d.category = "tensor";
  d.doc =
      "pads (input: [x1_begin, ..., x1_end, ...]; negative crops) with mode constant "
      "(constant_value input), reflect, edge or wrap";
  d.min_inputs = 2;
  d.max_inputs = 4;
  d.attrs = {{"mode", AttrType::String, "constant (default), reflect, edge or wrap"}};
  d.infer = [](InferContext& c) {
    auto pads = int_values(c, c.require_constant(1, "pads"), "pads");
    std::vector<int64_t> axes;
    if (c.has_input(3)) axes = int_values(c, c.require_constant(3, "axes"), "axes");
    if (c.has_input(2) && shape_numel(c.shape(2)) > 1) c.fail("constant_value", "must be a scalar");
    auto p = pad_plan(c, c.shape(0), pads, c.has_input(3) ? &axes : nullptr,
                      c.attrs().get_string("mode", "constant"));
    c.set_output(0, c.dtype(0), p.out);
  };
  d.reference = [](KernelContext& c) {
    const Tensor& x = input(c, 0, "data");
    auto pads = int_values(c, input(c, 1, "pads"), "pads");
    std::vector<int64_t> axes;
    if (has_input(c, 3)) axes = int_values(c, input(c, 3, "axes"), "axes");
    auto p = pad_plan(c, x.shape(), pads, has_input(c, 3) ? &axes : nullptr,
                      c.attrs().get_string("mode", "constant"));
    Tensor& y = output(c, 0, x.dtype(), p.out);
    // The fill value, converted to the data's dtype.
    Tensor fill(x.dtype(), {});
    if (has_input(c, 2)) {
      const Tensor& cv = input(c, 2, "constant_value");
      if (cv.numel() > 1) c.fail("constant_value", "must be a scalar");
      if (cv.numel() == 1) {
        if (is_float(cv.dtype()) || is_float(x.dtype()))
          fill.set(0, cv.get(0));
        else
          store_int(fill, 0, load_int(cv, 0));
      }
    }
    const size_t r = p.out.size();
    const auto st = strides_of(x.shape());
    std::vector<int64_t> idx(r, 0);
    for (int64_t o = 0; o < y.numel(); ++o) {
      int64_t off = 0;
      bool inside = true;
      for (size_t k = 0; k < r; ++k) {
        const int64_t dim = x.shape()[k];
        const int64_t lo = std::max<int64_t>(0, -p.begin[k]);             // first kept index
        const int64_t kept = dim - lo - std::max<int64_t>(0, -p.end[k]);  // kept length
        int64_t j = idx[k] - std::max<int64_t>(0, p.begin[k]);            // index in kept
        if (j < 0 || j >= kept) {
          switch (p.mode) {
            case PadMode::Constant:
              inside = false;
              break;
            case PadMode::Edge:
              j = j < 0 ? 0 : kept - 1;
              break;
            case PadMode::Wrap:
              j = ((j % kept) + kept) % kept;
              break;
            case PadMode::Reflect:
              if (kept == 1) {
                j = 0;
              } else {
                const int64_t period = 2 * (kept - 1);
                j = ((j % period) + period) % period;
                if (j >= kept) j = period - j;
              }
              break;
          }
        }
        if (!inside) break;
        off += (lo + j) * st[k];
      }
      if (inside)
        copy_elem(y, o, x, off);
      else
        copy_elem(y, o, fill, 0);
      for (size_t k = r; k-- > 0;) {
        if (++idx[k] < p.out[k]) break;
        idx[k] = 0;
      }
    }
  };
  return d;
}

// --- Tile --------------------------------------------------------------------------------------

template <class Ctx>
Shape tile_plan(const Ctx& c, const Shape& in, const std::vector<int64_t>& rep) {
  if (rep.size() != in.size())
    c.fail("repeats", "has " + std::to_string(rep.size()) + " values for a tensor of rank " +
                          std::to_string(in.size()));
  Shape out(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    if (rep[i] < 0) c.fail("repeats", "negative value in " + ints_str(rep));
    if (rep[i] > 0 && in[i] > (int64_t{1} << 40) / rep[i]) c.fail("repeats", "result too large");
    out[i] = in[i] * rep[i];
  }
  shape_numel(out);
  return out;
}

OpDef make_tile() {
  OpDef d;
  d.name = "Tile";
  d.category = "tensor";
  d.doc = "repeats the input `repeats[i]` times along dim i (repeats is an input)";
  d.min_inputs = d.max_inputs = 2;
  d.infer = [](InferContext& c) {
    auto rep = int_values(c, c.require_constant(1, "repeats"), "repeats");
    c.set_output(0, c.dtype(0), tile_plan(c, c.shape(0), rep));
  };
  d.reference = [](KernelContext& c) {
    const Tensor& x = input(c, 0, "input");
    auto rep = int_values(c, input(c, 1, "repeats"), "repeats");
    Shape out = tile_plan(c, x.shape(), rep);
    Tensor& y = output(c, 0, x.dtype(), out);
    const auto st = strides_of(x.shape());
    const size_t r = out.size();
    std::vector<int64_t> idx(r, 0);
    for (int64_t o = 0; o < y.numel(); ++o) {
      int64_t off = 0;
      for (size_t k = 0; k < r; ++k) off += (idx[k] % x.shape()[k]) * st[k];
      copy_elem(y, o, x, off);
      for (size_t k = r; k-- > 0;) {
        if (++idx[k] < out[k]) break;
        idx[k] = 0;
      }
    }
  };
  return d;
}

// --- DepthToSpace / SpaceToDepth ---------------------------------------------------------------

template <class Ctx>
Shape d2s_plan(const Ctx& c, const Shape& in, int64_t bs, bool to_space, const std::string& mode) {
  if (in.size() != 4) c.fail("input", "must be 4-D (N, C, H, W), found " + shape_str(in));
  if (bs <= 0 || bs > 4096) c.fail("blocksize", "must be positive, found " + std::to_string(bs));
  if (mode != "DCR" && mode != "CRD") c.fail("mode", "must be DCR or CRD, found '" + mode + "'");
  if (to_space) {
    if (in[1] % (bs * bs) != 0)
      c.fail("blocksize", "channels " + std::to_string(in[1]) +
                              " are not divisible by blocksize^2 " + std::to_string(bs * bs));
    return {in[0], in[1] / (bs * bs), in[2] * bs, in[3] * bs};
  }
  if (in[2] % bs != 0 || in[3] % bs != 0)
    c.fail("blocksize", "spatial dims of " + shape_str(in) + " are not divisible by blocksize " +
                            std::to_string(bs));
  return {in[0], in[1] * bs * bs, in[2] / bs, in[3] / bs};
}

OpDef make_depth_space(bool to_space) {
  OpDef d;
  d.name = to_space ? "DepthToSpace" : "SpaceToDepth";
  d.category = "tensor";
  d.doc = to_space ? "moves channel blocks into blocksize x blocksize spatial blocks (DCR/CRD)"
                   : "moves blocksize x blocksize spatial blocks into channels";
  d.attrs = {{"blocksize", AttrType::Int, "block size (required)"}};
  if (to_space) d.attrs.push_back({"mode", AttrType::String, "DCR (default) or CRD"});
  d.infer = [to_space](InferContext& c) {
    c.set_output(0, c.dtype(0),
                 d2s_plan(c, c.shape(0), c.attrs().get_int("blocksize"), to_space,
                          c.attrs().get_string("mode", "DCR")));
  };
  d.reference = [to_space](KernelContext& c) {
    const Tensor& x = input(c, 0, "input");
    const int64_t bs = c.attrs().get_int("blocksize");
    const std::string mode = c.attrs().get_string("mode", "DCR");
    Shape out = d2s_plan(c, x.shape(), bs, to_space, mode);
    Tensor& y = output(c, 0, x.dtype(), out);
    // The depth side (N, Cd, Hd, Wd) and the space side (N, Cs, Hs, Ws), Cd = Cs*bs*bs.
    const Shape& depth = to_space ? x.shape() : out;
    const Shape& space = to_space ? out : x.shape();
    const int64_t N = depth[0], Cs = space[1], Hd = depth[2], Wd = depth[3];
    const int64_t Hs = space[2], Ws = space[3], Cd = depth[1];
    const bool crd = to_space && mode == "CRD";
    for (int64_t n = 0; n < N; ++n)
      for (int64_t cs = 0; cs < Cs; ++cs)
        for (int64_t h = 0; h < Hd; ++h)
          for (int64_t i = 0; i < bs; ++i)
            for (int64_t w = 0; w < Wd; ++w)
              for (int64_t j = 0; j < bs; ++j) {
                const int64_t cd = crd ? (cs * bs + i) * bs + j : (i * bs + j) * Cs + cs;
                const int64_t d_off = ((n * Cd + cd) * Hd + h) * Wd + w;
                const int64_t s_off = ((n * Cs + cs) * Hs + h * bs + i) * Ws + w * bs + j;
                if (to_space)
                  copy_elem(y, s_off, x, d_off);
                else
                  copy_elem(y, d_off, x, s_off);
              }
  };
  return d;
}

const bool registered = [] {
  register_op(make_concat());
  register_op(make_split());
  register_op(make_slice());
  register_op(make_transpose());
  register_op(make_pad());
  register_op(make_tile());
  register_op(make_depth_space(true));
  register_op(make_depth_space(false));
  return true;
}();

}  // namespace
}  // namespace anvil
