// 3-D convolution and pooling: Conv3D, Conv3DBackpropInputV2 (the transposed convolution of
// tf.nn.conv3d_transpose / Conv3DTranspose), MaxPool3D, AvgPool3D, in NDHWC (TF's default) and
// NCDHW. The canonical Conv / ConvTranspose / MaxPool / AveragePool take 3 spatial dims.
#include <string>
#include <vector>

#include "anvil/error.h"
#include "import/tensorflow/tf_builder.h"

namespace anvil::tf_import {
namespace {

struct Dims3 {
  size_t sp[3];  // the spatial dims in TF's layout
  size_t c;      // the channel dim
};
Dims3 dims3(bool cl) { return cl ? Dims3{{1, 2, 3}, 4} : Dims3{{2, 3, 4}, 1}; }

std::vector<int64_t> five(TfBuilder& b, const std::string& name,
                          std::optional<std::vector<int64_t>> dflt, const Dims3& d) {
  auto v = b.attr_ints(name, std::move(dflt));
  if (v.size() != 5) fail(name, name + " must have 5 values, found " + ints_str(v));
  if (v[0] != 1 || v[d.c] != 1)
    fail(name, name + " in the batch and depth dimensions must be 1, found " + ints_str(v));
  for (int64_t x : v)
    if (x < 1) fail(name, name + " must be positive, found " + ints_str(v));
  return v;
}

std::vector<TT> conv3d(TfBuilder& b) {
  b.need_inputs(2, 2);
  const bool cl = b.channels_last_format("NDHWC");
  const Dims3 d = dims3(cl);
  const TT& x = b.in[0];
  const TT& w = b.in[1];
  Shape xs = b.tf_shape(x), ws = b.tf_shape(w);
  if (xs.size() != 5) fail("input", "input must be 5-D, found " + shape_str(xs));
  if (ws.size() != 5)
    fail("filter", "filter must be 5-D (kd, kh, kw, in, out), found " + shape_str(ws));
  auto st = five(b, "strides", std::nullopt, d);
  auto dil = five(b, "dilations", std::vector<int64_t>{1, 1, 1, 1, 1}, d);
  const int64_t C = xs[d.c];
  if (ws[3] < 1 || C % ws[3] != 0)
    fail("filter", "filter " + shape_str(ws) + " does not fit " + std::to_string(C) + " channels");
  const int64_t group = C / ws[3];
  if (ws[4] % group != 0)
    fail("filter", "output channels " + std::to_string(ws[4]) +
                       " not divisible by the group count " + std::to_string(group));
  const std::string padding = b.attr_s("padding");
  if (padding != "SAME" && padding != "VALID") fail("padding", "unknown padding '" + padding + "'");
  std::vector<int64_t> pads(6, 0), ks, ss, ds;
  for (int k = 0; k < 3; ++k) {
    const size_t a = d.sp[k];
    ks.push_back(ws[static_cast<size_t>(k)]);
    ss.push_back(st[a]);
    ds.push_back(dil[a]);
    if (padding == "SAME") {
      try {
        auto p = tf::same_pads(xs[a], ks.back(), ss.back(), ds.back());
        pads[static_cast<size_t>(k)] = p.begin;
        pads[static_cast<size_t>(k) + 3] = p.end;
      } catch (const Error& e) {
        fail("padding", e.message());
      }
    }
  }
  Attributes at;
  at.set("kernel_shape", ks);
  at.set("strides", ss);
  at.set("dilations", ds);
  at.set("pads", pads);
  at.set("group", group);
  const int wv = b.view(w, {4, 3, 0, 1, 2});  // DHWIO -> OIDHW
  const int y = b.emit1("Conv", {b.cf(x, cl), wv}, at);
  return {b.cf_out(y, cl)};
}

std::vector<TT> conv3d_backprop_input(TfBuilder& b) {
  b.need_inputs(3, 3);
  const bool cl = b.channels_last_format("NDHWC");
  const Dims3 d = dims3(cl);
  auto sizes = b.const_ints(0, "input_sizes");
  const TT& w = b.in[1];
  const TT& dy = b.in[2];
  Shape ws = b.tf_shape(w), ys = b.tf_shape(dy);
  if (sizes.size() != 5)
    fail("input_sizes", "input_sizes must have 5 values, found " + ints_str(sizes));
  if (ws.size() != 5)
    fail("filter", "filter must be 5-D (kd, kh, kw, in, out), found " + shape_str(ws));
  if (ys.size() != 5) fail("out_backprop", "out_backprop must be 5-D, found " + shape_str(ys));
  if (ws[4] != ys[d.c])
    fail("filter", "filter " + shape_str(ws) + " does not match out_backprop channels " +
                       std::to_string(ys[d.c]));
  if (ws[3] != sizes[d.c])
    fail("filter", "filter " + shape_str(ws) + " does not match input_sizes " + ints_str(sizes));
  if (sizes[0] != ys[0])
    fail("input_sizes", "batch of input_sizes " + ints_str(sizes) + " differs from out_backprop's");
  auto st = five(b, "strides", std::nullopt, d);
  auto dil = five(b, "dilations", std::vector<int64_t>{1, 1, 1, 1, 1}, d);
  const std::string padding = b.attr_s("padding");
  if (padding != "SAME" && padding != "VALID") fail("padding", "unknown padding '" + padding + "'");
  std::vector<int64_t> pads(6), outpad(3), ks, ss, ds;
  for (int k = 0; k < 3; ++k) {
    const size_t a = d.sp[k];
    ks.push_back(ws[static_cast<size_t>(k)]);
    ss.push_back(st[a]);
    ds.push_back(dil[a]);
    try {
      auto tp = tf::backprop_input_pads(ys[a], sizes[a], ks.back(), st[a], dil[a],
                                        padding == "SAME", tf::Pads{});
      pads[static_cast<size_t>(k)] = tp.pads.begin;
      pads[static_cast<size_t>(k) + 3] = tp.pads.end;
      outpad[static_cast<size_t>(k)] = tp.output_padding;
    } catch (const Error& e) {
      fail(e.field(), e.message());
    }
  }
  Attributes at;
  at.set("kernel_shape", ks);
  at.set("strides", ss);
  at.set("dilations", ds);
  at.set("pads", pads);
  at.set("output_padding", outpad);
  const int wv = b.view(w, {4, 3, 0, 1, 2});  // (kd, kh, kw, in, out) -> (out, in, kd, kh, kw)
  const int y = b.emit1("ConvTranspose", {b.cf(dy, cl), wv}, at);
  return {b.cf_out(y, cl)};
}

std::vector<TT> pool3d(TfBuilder& b, bool max) {
  b.need_inputs(1, 1);
  const bool cl = b.channels_last_format("NDHWC");
  const Dims3 d = dims3(cl);
  const TT& x = b.in[0];
  Shape xs = b.tf_shape(x);
  if (xs.size() != 5) fail("input", "input must be 5-D, found " + shape_str(xs));
  auto ks = five(b, "ksize", std::nullopt, d);
  auto st = five(b, "strides", std::nullopt, d);
  const std::string padding = b.attr_s("padding");
  if (padding != "SAME" && padding != "VALID") fail("padding", "unknown padding '" + padding + "'");
  std::vector<int64_t> pads(6, 0), k3, s3;
  for (int k = 0; k < 3; ++k) {
    const size_t a = d.sp[k];
    k3.push_back(ks[a]);
    s3.push_back(st[a]);
    if (padding == "VALID" && ks[a] > xs[a])
      fail("ksize", "window " + ints_str(ks) + " larger than the input " + shape_str(xs));
    try {
      auto p = tf::same_pads(padding == "SAME" ? xs[a] : 1, ks[a], st[a]);
      if (padding == "SAME") {
        pads[static_cast<size_t>(k)] = p.begin;
        pads[static_cast<size_t>(k) + 3] = p.end;
      }
    } catch (const Error& e) {
      fail("padding", e.message());
    }
  }
  Attributes at;
  at.set("kernel_shape", k3);
  at.set("strides", s3);
  at.set("pads", pads);
  if (!max) at.set("count_include_pad", int64_t{0});  // TF's SAME average excludes padding
  const int y = b.emit1(max ? "MaxPool" : "AveragePool", {b.cf(x, cl)}, at);
  return {b.cf_out(y, cl)};
}

}  // namespace

void add_3d_converters(ConverterTable& t) {
  t["Conv3D"] = conv3d;
  t["Conv3DBackpropInputV2"] = conv3d_backprop_input;
  t["MaxPool3D"] = [](TfBuilder& b) { return pool3d(b, true); };
  t["AvgPool3D"] = [](TfBuilder& b) { return pool3d(b, false); };
}

}  // namespace anvil::tf_import
