// Caffe layers that combine, split or reshape blobs: Eltwise, Concat, Slice, Split, Flatten,
// Reshape, Crop, ArgMax, Permute, Reduction, Tile, Silence.
#include <set>

#include "import/caffe/caffe_builder.h"

namespace anvil::caffe_import {

namespace {

void convert_eltwise(CaffeBuilder& cb, CaffeLayer& L) {
  cb.expect_bottoms(L, 2, -1);
  cb.expect_tops(L, 1, 1);
  const auto& ep = L.p->eltwise_param();
  for (size_t i = 1; i < L.shape.size(); ++i)
    if (L.shape[i] != L.shape[0])
      fail("bottom", "Eltwise needs bottoms of one shape, found " + dims_str(L.shape[0]) + " and " +
                         dims_str(L.shape[i]));
  const int n = static_cast<int>(L.in.size());
  if (ep.coeff_size() != 0 && ep.operation() != pb::EltwiseParameter::SUM)
    fail("coeff", "Eltwise takes coefficients only for SUM");
  if (ep.coeff_size() != 0 && ep.coeff_size() != n)
    fail("coeff", "Eltwise SUM needs one coefficient per bottom (" + std::to_string(n) +
                      "), found " + std::to_string(ep.coeff_size()));
  switch (ep.operation()) {
    case pb::EltwiseParameter::SUM: {
      std::vector<int> terms;
      for (int i = 0; i < n; ++i) {
        const float c = ep.coeff_size() ? ep.coeff(i) : 1.0f;
        if (c == 1.0f)
          terms.push_back(L.in[static_cast<size_t>(i)]);
        else
          terms.push_back(
              cb.emit(L, "Mul",
                      {L.in[static_cast<size_t>(i)], cb.scalar(L, "coeff" + std::to_string(i), c)},
                      {}, "coeff" + std::to_string(i)));
      }
      cb.emit_top(L, n == 2 ? "Add" : "Sum", terms, {});
      return;
    }
    case pb::EltwiseParameter::PROD: {
      int v = L.in[0];
      for (int i = 1; i < n; ++i)
        v = i + 1 == n ? cb.emit_top(L, "Mul", {v, L.in[static_cast<size_t>(i)]}, {})
                       : cb.emit(L, "Mul", {v, L.in[static_cast<size_t>(i)]}, {},
                                 "prod" + std::to_string(i));
      return;
    }
    case pb::EltwiseParameter::MAX:
      cb.emit_top(L, "Max", L.in, {});
      return;
  }
  fail("operation", "unknown Eltwise operation");
}

void convert_concat(CaffeBuilder& cb, CaffeLayer& L) {
  cb.expect_bottoms(L, 1, -1);
  cb.expect_tops(L, 1, 1);
  const auto& cp = L.p->concat_param();
  const int rank = static_cast<int>(L.shape[0].size());
  int axis;
  if (cp.has_concat_dim()) {
    if (static_cast<int>(cp.concat_dim()) >= rank) fail("concat_dim", "concat_dim is out of range");
    axis = static_cast<int>(cp.concat_dim());
  } else {
    axis = cb.canonical_axis(cp.axis(), rank, "axis");
  }
  Attributes a;
  a.set("axis", static_cast<int64_t>(axis));
  cb.emit_top(L, "Concat", L.in, a);
}

void convert_slice(CaffeBuilder& cb, CaffeLayer& L) {
  cb.expect_bottoms(L, 1, 1);
  cb.expect_tops(L, 1, -1);
  const auto& sp = L.p->slice_param();
  const Shape& x = L.shape[0];
  const int rank = static_cast<int>(x.size());
  int axis;
  if (sp.has_slice_dim()) {
    if (static_cast<int>(sp.slice_dim()) >= rank) fail("slice_dim", "slice_dim is out of range");
    axis = static_cast<int>(sp.slice_dim());
  } else {
    axis = cb.canonical_axis(sp.axis(), rank, "axis");
  }
  const int64_t dim = x[static_cast<size_t>(axis)];
  const int nt = L.p->top_size();
  std::vector<int64_t> sizes;
  if (sp.slice_point_size() > 0) {
    if (sp.slice_point_size() != nt - 1)
      fail("slice_point", std::to_string(nt) + " tops need " + std::to_string(nt - 1) +
                              " slice points, found " + std::to_string(sp.slice_point_size()));
    int64_t prev = 0;
    for (int i = 0; i < sp.slice_point_size(); ++i) {
      const int64_t p = sp.slice_point(i);
      if (p <= prev || p >= dim)
        fail("slice_point",
             "slice points must increase strictly inside (0, " + std::to_string(dim) + ")");
      sizes.push_back(p - prev);
      prev = p;
    }
    sizes.push_back(dim - prev);
  } else {
    if (dim % nt != 0)
      fail("top", "axis " + std::to_string(axis) + " of size " + std::to_string(dim) +
                      " does not split evenly into " + std::to_string(nt) + " tops");
    sizes.assign(static_cast<size_t>(nt), dim / nt);
  }
  if (nt == 1) {
    cb.emit_top(L, "Identity", {L.in[0]}, {});
    return;
  }
  Attributes a;
  a.set("axis", static_cast<int64_t>(axis));
  int ni = cb.add_node(L, "Split", {L.in[0], cb.i64s(L, "split", sizes)}, a, L.top_names, "");
  const Node& node = cb.graph().nodes[static_cast<size_t>(ni)];
  for (int i = 0; i < nt; ++i)
    L.tops[static_cast<size_t>(i)] = node.outputs[static_cast<size_t>(i)];
}

void convert_split(CaffeBuilder& cb, CaffeLayer& L) {
  cb.expect_bottoms(L, 1, 1);
  cb.expect_tops(L, 1, -1);
  for (size_t i = 0; i < L.top_names.size(); ++i) cb.emit_top(L, "Identity", {L.in[0]}, {}, i);
}

void convert_flatten(CaffeBuilder& cb, CaffeLayer& L) {
  cb.expect_bottoms(L, 1, 1);
  cb.expect_tops(L, 1, 1);
  const auto& fp = L.p->flatten_param();
  const Shape& x = L.shape[0];
  const int rank = static_cast<int>(x.size());
  const int start = cb.canonical_axis(fp.axis(), rank, "axis");
  const int end = cb.canonical_axis(fp.end_axis(), rank, "end_axis");
  if (end < start) fail("end_axis", "end_axis comes before axis");
  std::vector<int64_t> out(static_cast<size_t>(start), 0);  // leading dims kept (0 = copy)
  out.push_back(-1);
  for (int i = end + 1; i < rank; ++i) out.push_back(x[static_cast<size_t>(i)]);
  cb.emit_top(L, "Reshape", {L.in[0], cb.i64s(L, "shape", out)}, {});
}

void convert_reshape(CaffeBuilder& cb, CaffeLayer& L) {
  cb.expect_bottoms(L, 1, 1);
  cb.expect_tops(L, 1, 1);
  const auto& rp = L.p->reshape_param();
  const Shape& x = L.shape[0];
  const int rank = static_cast<int>(x.size());
  // Caffe's ReshapeLayer: axis may be in [-rank-1, rank]; num_axes -1 = to the end.
  const int64_t ax = rp.axis();
  if (ax < -rank - 1 || ax > rank) fail("axis", "axis " + std::to_string(ax) + " is out of range");
  const int start = static_cast<int>(ax < 0 ? ax + rank + 1 : ax);
  if (rp.num_axes() < -1) fail("num_axes", "num_axes must be >= -1");
  const int end = rp.num_axes() == -1 ? rank : start + static_cast<int>(rp.num_axes());
  if (end > rank) fail("num_axes", "axis + num_axes exceeds the input's axes");
  std::vector<int64_t> spec(rp.shape().dim().begin(), rp.shape().dim().end());
  Shape out(x.begin(), x.begin() + start);
  std::vector<int64_t> code(static_cast<size_t>(start), 0);  // 0 = copy (same position)
  int inferred = -1;
  for (size_t i = 0; i < spec.size(); ++i) {
    const int64_t d = spec[i];
    if (d == 0) {
      if (start + static_cast<int>(i) >= rank)
        fail("shape", "dim " + std::to_string(i) + " is 0 (copy) but the input has no such axis");
      out.push_back(x[static_cast<size_t>(start) + i]);
      code.push_back(start + static_cast<int>(i) < rank ? 0 : out.back());
    } else if (d == -1) {
      if (inferred >= 0) fail("shape", "only one dim may be -1");
      inferred = static_cast<int>(out.size());
      out.push_back(1);
      code.push_back(-1);
    } else if (d < -1) {
      fail("shape", "dims must be >= -1, found " + std::to_string(d));
    } else {
      out.push_back(d);
      code.push_back(d);
    }
  }
  for (int i = end; i < rank; ++i) {
    out.push_back(x[static_cast<size_t>(i)]);
    code.push_back(x[static_cast<size_t>(i)]);
  }
  const int64_t known = numel_of(out);  // the -1 slot counts as 1 here
  const int64_t total = numel_of(x);
  if (inferred >= 0) {
    if (known == 0 || total % known != 0)
      fail("shape",
           "cannot infer the -1 dim: " + std::to_string(total) + " values into " + dims_str(out));
    out[static_cast<size_t>(inferred)] = total / known;
  }
  if (numel_of(out) != total)
    fail("shape", "reshape of " + dims_str(x) + " (" + std::to_string(total) + " values) into " +
                      dims_str(out) + " changes the count");
  // Positions before `start` and 0-copies map to the same input position (ONNX 0 = copy);
  // trailing kept dims shift position, so they are explicit.
  cb.emit_top(L, "Reshape", {L.in[0], cb.i64s(L, "shape", code)}, {});
}

void convert_crop(CaffeBuilder& cb, CaffeLayer& L) {
  cb.expect_bottoms(L, 2, 2);
  cb.expect_tops(L, 1, 1);
  const auto& cp = L.p->crop_param();
  const Shape& x = L.shape[0];
  const Shape& ref = L.shape[1];
  const int rank = static_cast<int>(x.size());
  if (ref.size() != x.size())
    fail("bottom",
         "Crop needs bottoms of one rank, found " + dims_str(x) + " and " + dims_str(ref));
  const int start = cb.canonical_axis(cp.axis(), rank, "axis");
  if (cp.offset_size() > 1 && cp.offset_size() != rank - start)
    fail("offset", "give 0, 1 or " + std::to_string(rank - start) + " offsets, found " +
                       std::to_string(cp.offset_size()));
  std::vector<int64_t> starts, ends, axes;
  for (int i = start; i < rank; ++i) {
    const int64_t off =
        cp.offset_size() == 0 ? 0 : cp.offset(cp.offset_size() == 1 ? 0 : i - start);
    const int64_t size = ref[static_cast<size_t>(i)];
    if (off + size > x[static_cast<size_t>(i)])
      fail("offset", "crop of axis " + std::to_string(i) + " (offset " + std::to_string(off) +
                         ", size " + std::to_string(size) + ") exceeds the input's " +
                         std::to_string(x[static_cast<size_t>(i)]));
    starts.push_back(off);
    ends.push_back(off + size);
    axes.push_back(i);
  }
  cb.emit_top(
      L, "Slice",
      {L.in[0], cb.i64s(L, "starts", starts), cb.i64s(L, "ends", ends), cb.i64s(L, "axes", axes)},
      {});
}

void convert_argmax(CaffeBuilder& cb, CaffeLayer& L) {
  cb.expect_bottoms(L, 1, 1);
  cb.expect_tops(L, 1, 1);
  const auto& ap = L.p->argmax_param();
  Attributes a;
  if (ap.has_axis())
    a.set("axis", static_cast<int64_t>(
                      cb.canonical_axis(ap.axis(), static_cast<int>(L.shape[0].size()), "axis")));
  a.set("top_k", static_cast<int64_t>(ap.top_k()));
  a.set("out_max_val", int64_t{ap.out_max_val() ? 1 : 0});
  cb.emit_top(L, "CaffeArgMax", {L.in[0]}, a);
}

void convert_permute(CaffeBuilder& cb, CaffeLayer& L) {
  cb.expect_bottoms(L, 1, 1);
  cb.expect_tops(L, 1, 1);
  const int rank = static_cast<int>(L.shape[0].size());
  std::vector<int64_t> perm;
  std::set<int64_t> seen;
  for (uint32_t o : L.p->permute_param().order()) {
    if (static_cast<int>(o) >= rank)
      fail("order", "order " + std::to_string(o) + " is out of range");
    if (!seen.insert(o).second) fail("order", "order " + std::to_string(o) + " is repeated");
    perm.push_back(o);
  }
  for (int i = 0; i < rank; ++i)
    if (!seen.count(i)) perm.push_back(i);  // unlisted axes follow in order (Caffe's rule)
  Attributes a;
  a.set("perm", perm);
  cb.emit_top(L, "Transpose", {L.in[0]}, a);
}

// Reduction: axes [axis, end) reduced to nothing (output shape x[:axis]), times coeff.
void convert_reduction(CaffeBuilder& cb, CaffeLayer& L) {
  cb.expect_bottoms(L, 1, 1);
  cb.expect_tops(L, 1, 1);
  const auto& rp = L.p->reduction_param();
  const int rank = static_cast<int>(L.shape[0].size());
  const int axis = cb.canonical_axis(rp.axis(), rank, "axis");
  std::vector<int64_t> axes;
  for (int i = axis; i < rank; ++i) axes.push_back(i);
  std::string op;
  switch (rp.operation()) {
    case pb::ReductionParameter::SUM:
      op = "ReduceSum";
      break;
    case pb::ReductionParameter::ASUM:
      op = "ReduceL1";
      break;
    case pb::ReductionParameter::SUMSQ:
      op = "ReduceSumSquare";
      break;
    case pb::ReductionParameter::MEAN:
      op = "ReduceMean";
      break;
  }
  Attributes a;
  a.set("keepdims", int64_t{0});
  if (rp.coeff() == 1.0f) {
    cb.emit_top(L, op, {L.in[0], cb.i64s(L, "axes", axes)}, a);
    return;
  }
  int r = cb.emit(L, op, {L.in[0], cb.i64s(L, "axes", axes)}, a, "reduce");
  cb.emit_top(L, "Mul", {r, cb.scalar(L, "coeff", rp.coeff())}, {});
}

void convert_tile(CaffeBuilder& cb, CaffeLayer& L) {
  cb.expect_bottoms(L, 1, 1);
  cb.expect_tops(L, 1, 1);
  const auto& tp = L.p->tile_param();
  const int rank = static_cast<int>(L.shape[0].size());
  const int axis = cb.canonical_axis(tp.axis(), rank, "axis");
  if (tp.tiles() < 1) fail("tiles", "tiles must be >= 1, found " + std::to_string(tp.tiles()));
  std::vector<int64_t> reps(static_cast<size_t>(rank), 1);
  reps[static_cast<size_t>(axis)] = tp.tiles();
  cb.emit_top(L, "Tile", {L.in[0], cb.i64s(L, "repeats", reps)}, {});
}

void convert_silence(CaffeBuilder& cb, CaffeLayer& L) { cb.expect_tops(L, 0, 0); }

const ConverterRegistrar registrar({
    {"Eltwise", convert_eltwise},
    {"Concat", convert_concat},
    {"Slice", convert_slice},
    {"Split", convert_split},
    {"Flatten", convert_flatten},
    {"Reshape", convert_reshape},
    {"Crop", convert_crop},
    {"ArgMax", convert_argmax},
    {"Permute", convert_permute},
    {"Silence", convert_silence},
    {"Reduction", convert_reduction},
    {"Tile", convert_tile},
});

}  // namespace

}  // namespace anvil::caffe_import
