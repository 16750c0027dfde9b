#include <algorithm>
#include <numeric>
#include <set>

#include "anvil/error.h"
#include "import/tensorflow/tf_builder.h"

namespace anvil::tf_import {
namespace {

std::vector<TT> conv2d(TfBuilder& b, bool depthwise) {
  b.need_inputs(2, 2);
  const bool cl = b.channels_last_format();
  const TT& x = b.in[0];
  const TT& w = b.in[1];
  Shape xs = b.tf_shape(x), ws = b.tf_shape(w);
  if (xs.size() != 4) fail("input", "input must be 4-D, found " + shape_str(xs));
  if (ws.size() != 4)
    fail("filter", "filter must be 4-D (kh, kw, in, out), found " + shape_str(ws));
  const int hi = cl ? 1 : 2, wi = cl ? 2 : 3, ci = cl ? 3 : 1;
  auto strides = b.attr_ints("strides");
  auto dil = b.attr_ints("dilations", std::vector<int64_t>{1, 1, 1, 1});
  if (strides.size() != 4)
    fail("strides", "strides must have 4 values, found " + ints_str(strides));
  if (dil.size() != 4) fail("dilations", "dilations must have 4 values, found " + ints_str(dil));
  if (strides[0] != 1 || strides[static_cast<size_t>(ci)] != 1)
    fail("strides",
         "strides in the batch and depth dimensions must be 1, found " + ints_str(strides));
  if (dil[0] != 1 || dil[static_cast<size_t>(ci)] != 1)
    fail("dilations",
         "dilations in the batch and depth dimensions must be 1, found " + ints_str(dil));
  const int64_t C = xs[static_cast<size_t>(ci)];
  const int64_t kh = ws[0], kw = ws[1];
  int64_t group = 1;
  int wv;
  if (depthwise) {
    if (ws[2] != C)
      fail("filter", "depthwise filter " + shape_str(ws) + " does not match " + std::to_string(C) +
                         " input channels");
    // (kh, kw, C, M) -> (C, M, kh, kw) -> (C*M, 1, kh, kw): output channel c*M + m, TF's order
    int t = b.view(w, {2, 3, 0, 1});
    wv = b.reshape(t, {ws[2] * ws[3], 1, kh, kw});
    group = C;
  } else {
    if (ws[2] < 1 || C % ws[2] != 0)
      fail("filter",
           "filter " + shape_str(ws) + " does not fit " + std::to_string(C) + " input channels");
    group = C / ws[2];
    if (ws[3] % group != 0)
      fail("filter", "output channels " + std::to_string(ws[3]) +
                         " not divisible by the group count " + std::to_string(group));
    wv = b.view(w, {3, 2, 0, 1});  // HWIO -> OIHW
  }
  const int64_t sh = strides[static_cast<size_t>(hi)], sw = strides[static_cast<size_t>(wi)];
  const int64_t dh = dil[static_cast<size_t>(hi)], dw = dil[static_cast<size_t>(wi)];
  std::string padding = b.attr_s("padding");
  std::vector<int64_t> pads;
  try {
    if (padding == "SAME") {
      auto ph = tf::same_pads(xs[static_cast<size_t>(hi)], kh, sh, dh);
      auto pw = tf::same_pads(xs[static_cast<size_t>(wi)], kw, sw, dw);
      pads = {ph.begin, pw.begin, ph.end, pw.end};
    } else if (padding == "VALID") {
      pads = {0, 0, 0, 0};
    } else if (padding == "EXPLICIT") {
      auto ep = b.attr_ints("explicit_paddings");
      if (ep.size() != 8)
        fail("explicit_paddings", "explicit_paddings must have 8 values, found " + ints_str(ep));
      for (int64_t p : ep)
        if (p < 0) fail("explicit_paddings", "negative padding in " + ints_str(ep));
      const size_t h2 = static_cast<size_t>(hi) * 2, w2 = static_cast<size_t>(wi) * 2;
      pads = {ep[h2], ep[w2], ep[h2 + 1], ep[w2 + 1]};
    } else {
      fail("padding", "unknown padding '" + padding + "'");
    }
  } catch (const Error& e) {
    fail("padding", e.message());
  }
  Attributes a;
  a.set("kernel_shape", std::vector<int64_t>{kh, kw});
  a.set("strides", std::vector<int64_t>{sh, sw});
  a.set("dilations", std::vector<int64_t>{dh, dw});
  a.set("pads", pads);
  a.set("group", group);
  int y = b.emit1("Conv", {b.cf(x, cl), wv}, a);
  return {b.cf_out(y, cl)};
}

std::vector<TT> conv2d_backprop_input(TfBuilder& b) {
  b.need_inputs(3, 3);
  const bool cl = b.channels_last_format();
  auto sizes = b.const_ints(0, "input_sizes");
  const TT& w = b.in[1];
  const TT& dy = b.in[2];
  Shape ws = b.tf_shape(w), ys = b.tf_shape(dy);
  if (sizes.size() != 4)
    fail("input_sizes", "input_sizes must have 4 values, found " + ints_str(sizes));
  if (ws.size() != 4)
    fail("filter", "filter must be 4-D (kh, kw, out, in), found " + shape_str(ws));
  if (ys.size() != 4) fail("out_backprop", "out_backprop must be 4-D, found " + shape_str(ys));
  const int hi = cl ? 1 : 2, wi = cl ? 2 : 3, ci = cl ? 3 : 1;
  if (ws[3] != ys[static_cast<size_t>(ci)])
    fail("filter", "filter " + shape_str(ws) + " does not match out_backprop channels " +
                       std::to_string(ys[static_cast<size_t>(ci)]));
  if (ws[2] != sizes[static_cast<size_t>(ci)])
    fail("filter", "filter " + shape_str(ws) + " does not match input_sizes " + ints_str(sizes));
  if (sizes[0] != ys[0])
    fail("input_sizes", "batch of input_sizes " + ints_str(sizes) + " differs from out_backprop's");
  auto strides = b.attr_ints("strides");
  auto dil = b.attr_ints("dilations", std::vector<int64_t>{1, 1, 1, 1});
  if (strides.size() != 4 || dil.size() != 4)
    fail("strides", "strides and dilations must have 4 values");
  std::string padding = b.attr_s("padding");
  if (padding != "SAME" && padding != "VALID" && padding != "EXPLICIT")
    fail("padding", "unknown padding '" + padding + "'");
  std::vector<int64_t> ep(8, 0);
  if (padding == "EXPLICIT") {
    ep = b.attr_ints("explicit_paddings");
    if (ep.size() != 8) fail("explicit_paddings", "explicit_paddings must have 8 values");
  }
  std::vector<int64_t> pads(4), outpad(2);
  for (int k = 0; k < 2; ++k) {
    const size_t d = static_cast<size_t>(k == 0 ? hi : wi);
    try {
      auto tp =
          tf::backprop_input_pads(ys[d], sizes[d], ws[static_cast<size_t>(k)], strides[d], dil[d],
                                  padding == "SAME", tf::Pads{ep[d * 2], ep[d * 2 + 1]});
      pads[static_cast<size_t>(k)] = tp.pads.begin;
      pads[static_cast<size_t>(k) + 2] = tp.pads.end;
      outpad[static_cast<size_t>(k)] = tp.output_padding;
    } catch (const Error& e) {
      fail(e.field(), e.message());
    }
  }
  Attributes a;
  a.set("kernel_shape", std::vector<int64_t>{ws[0], ws[1]});
  a.set("strides",
        std::vector<int64_t>{strides[static_cast<size_t>(hi)], strides[static_cast<size_t>(wi)]});
  a.set("dilations",
        std::vector<int64_t>{dil[static_cast<size_t>(hi)], dil[static_cast<size_t>(wi)]});
  a.set("pads", pads);
  a.set("output_padding", outpad);
  int wv = b.view(w, {3, 2, 0, 1});  // (kh, kw, out, in) -> (in, out, kh, kw)
  int y = b.emit1("ConvTranspose", {b.cf(dy, cl), wv}, a);
  return {b.cf_out(y, cl)};
}

std::vector<TT> pool(TfBuilder& b, bool max) {
  const bool v2 = b.n->op() == "MaxPoolV2";
  b.need_inputs(v2 ? 3 : 1, v2 ? 3 : 1);
  const bool cl = b.channels_last_format();
  const TT& x = b.in[0];
  Shape xs = b.tf_shape(x);
  if (xs.size() != 4) fail("input", "input must be 4-D, found " + shape_str(xs));
  auto ks = v2 ? b.const_ints(1, "ksize") : b.attr_ints("ksize");
  auto st = v2 ? b.const_ints(2, "strides") : b.attr_ints("strides");
  if (ks.size() != 4) fail("ksize", "ksize must have 4 values, found " + ints_str(ks));
  if (st.size() != 4) fail("strides", "strides must have 4 values, found " + ints_str(st));
  const int hi = cl ? 1 : 2, wi = cl ? 2 : 3, ci = cl ? 3 : 1;
  if (ks[0] != 1 || ks[static_cast<size_t>(ci)] != 1)
    fail("ksize", "pooling over the batch or depth dimension is not supported: " + ints_str(ks));
  if (st[0] != 1 || st[static_cast<size_t>(ci)] != 1)
    fail("strides", "strides in the batch and depth dimensions must be 1, found " + ints_str(st));
  const int64_t kh = ks[static_cast<size_t>(hi)], kw = ks[static_cast<size_t>(wi)];
  const int64_t sh = st[static_cast<size_t>(hi)], sw = st[static_cast<size_t>(wi)];
  std::string padding = b.attr_s("padding");
  std::vector<int64_t> pads{0, 0, 0, 0};
  try {
    if (padding == "SAME") {
      auto ph = tf::same_pads(xs[static_cast<size_t>(hi)], kh, sh);
      auto pw = tf::same_pads(xs[static_cast<size_t>(wi)], kw, sw);
      pads = {ph.begin, pw.begin, ph.end, pw.end};
    } else if (padding == "VALID") {
      if (kh > xs[static_cast<size_t>(hi)] || kw > xs[static_cast<size_t>(wi)])
        fail("ksize", "window " + ints_str(ks) + " larger than the input " + shape_str(xs));
      tf::same_pads(1, kh, sh);  // checks the window parameters
      tf::same_pads(1, kw, sw);
    } else {
      fail("padding", "unknown padding '" + padding + "'");
    }
  } catch (const Error& e) {
    fail("padding", e.message());
  }
  Attributes a;
  a.set("kernel_shape", std::vector<int64_t>{kh, kw});
  a.set("strides", std::vector<int64_t>{sh, sw});
  a.set("pads", pads);
  if (!max) a.set("count_include_pad", int64_t{0});  // TF's SAME average excludes padding
  int y = b.emit1(max ? "MaxPool" : "AveragePool", {b.cf(x, cl)}, a);
  return {b.cf_out(y, cl)};
}

std::vector<TT> fused_batch_norm(TfBuilder& b) {
  b.need_inputs(5, 5);
  const bool cl = b.channels_last_format();
  const double eps = b.attr_f("epsilon", 0.0001);
  const bool training = b.attr_b("is_training", true);
  const TT& x = b.in[0];
  const int r = b.rank(x.v);
  if (r < 3) fail("x", "input must have rank >= 3, found " + shape_str(b.tf_shape(x)));
  const int64_t C = b.tf_shape(x)[cl ? static_cast<size_t>(r - 1) : 1];
  for (size_t i = 1; i < 5; ++i) {
    Shape s = b.tf_shape(b.in[i]);
    const bool empty_ok = training && i >= 3 && s.size() == 1 && s[0] == 0;
    if (!empty_ok && (s.size() != 1 || s[0] != C))
      fail(i == 1   ? "scale"
           : i == 2 ? "offset"
           : i == 3 ? "mean"
                    : "variance",
           "must be a vector of " + std::to_string(C) + " values, found " + shape_str(s));
  }
  const int xc = b.cf(x, cl);
  const DType xd = b.dtype(xc);
  // Statistics are computed in the scale's dtype (float for half inputs, as TF does).
  const DType ud = b.dtype(b.in[1].v);
  Attributes a;
  a.set("epsilon", eps);
  std::vector<TT> outs;
  if (!training) {
    int xin = xd == ud ? xc : b.emit1("Cast", {xc}, [&] {
      Attributes c;
      c.set("to", onnx_dtype_code(ud));
      return c;
    }());
    int y = b.emit1("BatchNormalization",
                    {xin, b.src(b.in[1]), b.src(b.in[2]), b.src(b.in[3]), b.src(b.in[4])}, a);
    if (xd != ud) {
      Attributes c;
      c.set("to", onnx_dtype_code(xd));
      y = b.emit1("Cast", {y}, c);
    }
    outs = {b.cf_out(y, cl), b.in[3], b.in[4], b.in[3], b.in[4]};
    return outs;
  }
  // Training mode: the batch's own statistics over every axis but the channel axis.
  std::vector<int64_t> axes{0};
  int64_t count = b.shape(xc)[0];
  for (int k = 2; k < r; ++k) {
    axes.push_back(k);
    count *= b.shape(xc)[static_cast<size_t>(k)];
  }
  Attributes c;
  c.set("to", onnx_dtype_code(ud));
  int xf = xd == ud ? xc : b.emit1("Cast", {xc}, c);
  Attributes ra;
  ra.set("keepdims", int64_t{0});
  int mean = b.emit1("ReduceMean", {xf, b.i64s(axes)}, ra);
  Shape bshape(static_cast<size_t>(r), 1);
  bshape[1] = C;
  int mean_b = b.reshape(mean, bshape);
  int d = b.emit1("Sub", {xf, mean_b});
  int d2 = b.emit1("Mul", {d, d});
  int var = b.emit1("ReduceMean", {d2, b.i64s(axes)}, ra);
  int y = b.emit1("BatchNormalization", {xf, b.src(b.in[1]), b.src(b.in[2]), mean, var}, a);
  if (xd != ud) {
    Attributes cb;
    cb.set("to", onnx_dtype_code(xd));
    y = b.emit1("Cast", {y}, cb);
  }
  // batch_variance is reported with Bessel's correction (n / (n - 1)), as TF does.
  const double corr = count > 1 ? static_cast<double>(count) / static_cast<double>(count - 1) : 1.0;
  int var_out = b.emit1("Mul", {var, b.scalar(ud, corr)});
  return {b.cf_out(y, cl), TT{mean, {}}, TT{var_out, {}}, TT{mean, {}}, TT{var, {}}};
}

std::vector<TT> bias_add(TfBuilder& b) {
  const std::string& op = b.op();
  b.need_inputs(2, 2);
  const bool cl = op == "BiasAddV1" ? true : b.channels_last_format();
  const TT& x = b.in[0];
  const int r = b.rank(x.v);
  Shape bs = b.tf_shape(b.in[1]);
  if (r < 2 || bs.size() != 1) fail("bias", "bias must be 1-D and value at least 2-D");
  const int64_t C = b.tf_shape(x)[cl ? static_cast<size_t>(r - 1) : 1];
  if (bs[0] != C)
    fail("bias",
         "bias of " + std::to_string(bs[0]) + " values for " + std::to_string(C) + " channels");
  if (cl) return {b.elementwise("Add", {x, b.in[1]})};
  Shape s(static_cast<size_t>(r - 1), 1);
  s[0] = C;
  TT bias{b.reshape(b.src(b.in[1]), s), {}};
  return {b.elementwise("Add", {x, bias})};
}

std::vector<TT> lrn(TfBuilder& b) {
  b.need_inputs(1, 1);
  const TT& x = b.in[0];
  if (b.rank(x.v) != 4) fail("input", "LRN needs a 4-D input");
  const int64_t radius = b.attr_i("depth_radius", 5);
  if (radius < 0 || radius > 1 << 20) fail("depth_radius", "bad depth_radius");
  const int64_t size = 2 * radius + 1;
  Attributes a;
  a.set("size", size);
  a.set("alpha", b.attr_f("alpha", 1.0) * static_cast<double>(size));
  a.set("beta", b.attr_f("beta", 0.5));
  a.set("bias", b.attr_f("bias", 1.0));
  return {b.cf_out(b.emit1("LRN", {b.cf(x, true)}, a), true)};
}

std::vector<TT> softmax(TfBuilder& b, const std::string& op) {
  b.need_inputs(1, 1);
  const TT& x = b.in[0];
  const int r = b.rank(x.v);
  if (r < 1) fail("logits", "logits must have rank >= 1");
  Attributes a;
  a.set("axis", int64_t{b.canon_axis(x, r - 1)});
  return {b.unary(op, x, a)};
}

std::vector<TT> matmul(TfBuilder& b, bool batch) {
  b.need_inputs(2, 2);
  int xa = b.src(b.in[0]), xb = b.src(b.in[1]);
  const bool ta = batch ? b.attr_b("adj_x", false) : b.attr_b("transpose_a", false);
  const bool tb = batch ? b.attr_b("adj_y", false) : b.attr_b("transpose_b", false);
  if (!batch) {
    if (b.rank(xa) != 2 || b.rank(xb) != 2) fail("a", "MatMul needs 2-D inputs");
    Attributes at;
    at.set("transA", int64_t{ta});
    at.set("transB", int64_t{tb});
    return {TT{b.emit1("Gemm", {xa, xb}, at), {}}};
  }
  auto swap_last = [&](int v) {
    const int r = b.rank(v);
    if (r < 2) fail("x", "BatchMatMul needs inputs of rank >= 2");
    std::vector<int> p(static_cast<size_t>(r));
    std::iota(p.begin(), p.end(), 0);
    std::swap(p[static_cast<size_t>(r - 1)], p[static_cast<size_t>(r - 2)]);
    return b.view(TT{v, {}}, p);
  };
  if (ta) xa = swap_last(xa);
  if (tb) xb = swap_last(xb);
  return {TT{b.emit1("MatMul", {xa, xb}), {}}};
}

}  // namespace

void add_nn_converters(ConverterTable& t) {
  t["Conv2D"] = [](TfBuilder& b) { return conv2d(b, false); };
  t["DepthwiseConv2dNative"] = [](TfBuilder& b) { return conv2d(b, true); };
  t["Conv2DBackpropInput"] = conv2d_backprop_input;
  t["MaxPool"] = t["MaxPoolV2"] = [](TfBuilder& b) { return pool(b, true); };
  t["AvgPool"] = [](TfBuilder& b) { return pool(b, false); };
  t["FusedBatchNorm"] = t["FusedBatchNormV2"] = t["FusedBatchNormV3"] = fused_batch_norm;
  t["BiasAdd"] = t["BiasAddV1"] = bias_add;
  t["LRN"] = lrn;
  t["Softmax"] = [](TfBuilder& b) { return softmax(b, "Softmax"); };
  t["LogSoftmax"] = [](TfBuilder& b) { return softmax(b, "LogSoftmax"); };
  t["MatMul"] = [](TfBuilder& b) { return matmul(b, false); };
  t["BatchMatMul"] = t["BatchMatMulV2"] =
      t["BatchMatMulV3"] = [](TfBuilder& b) { return matmul(b, true); };
}

}  // namespace anvil::tf_import
