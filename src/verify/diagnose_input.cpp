// Input hypotheses: channel order, scale (x255, /255), mean, layout (NHWC/NCHW), tested by
// comparing our input with the reference's, or by re-running the first layer on our input
// transformed (when the reference has no input).
#include <cmath>
#include <cstdio>

#include "verify/diagnose.h"

namespace anvil::diag {
namespace {

std::string fmt(double x) {
  char b[48];
  std::snprintf(b, sizeof b, "%.6g", x);
  return b;
}

int channel_axis(const Tensor& t, bool channels_last) {
  if (t.rank() < 3) return t.rank() == 2 && channels_last ? 1 : -1;
  return channels_last ? t.rank() - 1 : 1;
}

// Index of the channel of flat element i.
struct ChannelIndex {
  int64_t inner = 1, channels = 1;
  ChannelIndex(const Tensor& t, int axis) {
    channels = t.dim(axis);
    for (int d = axis + 1; d < t.rank(); ++d) inner *= t.dim(d);
  }
  int64_t operator()(int64_t i) const { return (i / inner) % channels; }
};

Tensor reverse_channels(const Tensor& t, int axis) {
  Tensor r(t.dtype(), t.shape());
  ChannelIndex ci(t, axis);
  for (int64_t i = 0; i < t.numel(); ++i) {
    int64_t c = ci(i);
    int64_t j = i + (ci.channels - 1 - 2 * c) * ci.inner;
    r.set(i, t.get(j));
  }
  return r;
}

Tensor affine(const Tensor& t, int axis, const std::vector<double>& a,
              const std::vector<double>& b) {
  Tensor r(DType::f64, t.shape());
  if (axis < 0) {
    for (int64_t i = 0; i < t.numel(); ++i) r.set(i, t.get(i) * a[0] + b[0]);
    return r;
  }
  ChannelIndex ci(t, axis);
  for (int64_t i = 0; i < t.numel(); ++i) {
    auto c = static_cast<size_t>(ci(i));
    r.set(i, t.get(i) * a[c] + b[c]);
  }
  return r;
}

// Same shape, different content: before > 0 worth explaining.
bool worth(const Tensor& ours, const Tensor& ref) { return rel_error(ours, ref) > 0; }

bool explained(double after, double before) {
  return std::isfinite(after) && after < 1e-3 && after < 0.01 * before;
}

// Tensor as double with new shape (same element order).
Tensor as_shape(const Tensor& t, const Shape& s) { return t.reshaped(s); }

std::string channels_text(const std::vector<double>& v) {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + fmt(v[i]);
  return v.size() == 1 ? s : "(" + s + ")";
}

// The per-channel means people subtract (ImageNet, 0-255 and 0-1 ranges), in RGB order.
const double kMean255[3] = {123.68, 116.779, 103.939};
const double kMean1[3] = {0.485, 0.456, 0.406};

std::string known_mean(const std::vector<double>& m) {
  if (m.size() != 3) return "";
  for (int order = 0; order < 2; ++order)
    for (const double* ref : {kMean255, kMean1}) {
      bool same = true;
      for (int c = 0; c < 3; ++c) {
        double want = ref[order ? 2 - c : c];
        same &= std::fabs(std::fabs(m[static_cast<size_t>(c)]) - want) < 0.01 * want + 1e-3;
      }
      if (same) return std::string(" (the ImageNet mean in ") + (order ? "BGR" : "RGB") + " order)";
    }
  return "";
}

}  // namespace

std::optional<Finding> input_channel_order(const std::string& name, const Tensor& ours,
                                           const Tensor& ref, bool channels_last, double, double) {
  int axis = channel_axis(ours, channels_last);
  if (axis < 0 || ours.shape() != ref.shape() || ours.dim(axis) < 2 || !worth(ours, ref))
    return std::nullopt;
  double before = rel_error(ours, ref), after = rel_error(reverse_channels(ours, axis), ref);
  if (!explained(after, before)) return std::nullopt;
  return Finding{{"input_channel_order", name,
                  "the input's channels are in reverse order (RGB vs BGR): the reference's input "
                  "is ours with the " +
                      std::to_string(ours.dim(axis)) + " channels reversed (relative error " +
                      fmt(before) + " -> " + fmt(after) +
                      "); feed the other channel order (anvil run/verify: --bgr or --rgb)"},
                 after};
}

std::optional<Finding> input_scale(const std::string& name, const Tensor& ours, const Tensor& ref,
                                   bool, double, double) {
  if (ours.shape() != ref.shape() || !worth(ours, ref)) return std::nullopt;
  double oo = 0, orr = 0;
  for (int64_t i = 0; i < ours.numel(); ++i) {
    oo += ours.get(i) * ours.get(i);
    orr += ours.get(i) * ref.get(i);
  }
  if (oo == 0) return std::nullopt;
  const double k = orr / oo;
  if (std::fabs(k - 1) < 1e-3 || k == 0) return std::nullopt;
  double before = rel_error(ours, ref), after = rel_error(affine(ours, -1, {k}, {0}), ref);
  if (!explained(after, before)) return std::nullopt;
  std::string what;
  if (std::fabs(k / 255 - 1) < 2e-3)
    what =
        "the reference's input is ours x 255 (pixels in [0, 255] there, in [0, 1] here): "
        "drop the division by 255";
  else if (std::fabs(k * 255 - 1) < 2e-3)
    what =
        "the reference's input is ours / 255 (pixels in [0, 1] there, in [0, 255] here): "
        "divide by 255 (--divide 255)";
  else
    what =
        "the reference's input is ours x " + fmt(k) + ": scale the input (--scale " + fmt(k) + ")";
  return Finding{
      {"input_scale", name, what + " (relative error " + fmt(before) + " -> " + fmt(after) + ")"},
      after};
}

std::optional<Finding> input_mean(const std::string& name, const Tensor& ours, const Tensor& ref,
                                  bool channels_last, double, double) {
  if (ours.shape() != ref.shape() || !worth(ours, ref)) return std::nullopt;
  int axis = channel_axis(ours, channels_last);
  const int64_t C = axis < 0 ? 1 : ours.dim(axis);
  if (C > 64) return std::nullopt;  // not an image-like channel axis
  std::vector<double> so(static_cast<size_t>(C)), sr(so), soo(so), sor(so), n(so);
  if (axis < 0) {
    for (int64_t i = 0; i < ours.numel(); ++i) {
      so[0] += ours.get(i), sr[0] += ref.get(i), soo[0] += ours.get(i) * ours.get(i);
      sor[0] += ours.get(i) * ref.get(i), n[0] += 1;
    }
  } else {
    ChannelIndex ci(ours, axis);
    for (int64_t i = 0; i < ours.numel(); ++i) {
      auto c = static_cast<size_t>(ci(i));
      const double o = ours.get(i), r = ref.get(i);
      so[c] += o, sr[c] += r, soo[c] += o * o, sor[c] += o * r, n[c] += 1;
    }
  }
  const double before = rel_error(ours, ref);
  // 1. a pure per-channel offset: ref = ours + b
  std::vector<double> ones(static_cast<size_t>(C), 1.0), b(static_cast<size_t>(C));
  double maxb = 0;
  for (size_t c = 0; c < b.size(); ++c) {
    b[c] = n[c] ? (sr[c] - so[c]) / n[c] : 0;
    maxb = std::max(maxb, std::fabs(b[c]));
  }
  double after = rel_error(affine(ours, axis, ones, b), ref);
  if (maxb > 0 && explained(after, before)) {
    std::vector<double> m(b.size());
    for (size_t c = 0; c < b.size(); ++c) m[c] = -b[c];
    bool subtracted_there = b[0] < 0;
    std::string msg = subtracted_there ? "the reference's input has a per-channel mean " +
                                             channels_text(m) + " subtracted that ours has not" +
                                             known_mean(m) + ": subtract it (--mean)"
                                       : "our input has a per-channel mean " + channels_text(b) +
                                             " subtracted that the reference's has not" +
                                             known_mean(b) + ": do not subtract it";
    return Finding{
        {"input_mean", name, msg + " (relative error " + fmt(before) + " -> " + fmt(after) + ")"},
        after};
  }
  // 2. per-channel scale and offset: ref = a * ours + b (e.g. x / 127.5 - 1, or std division)
  std::vector<double> a(static_cast<size_t>(C));
  for (size_t c = 0; c < a.size(); ++c) {
    double var = soo[c] - so[c] * so[c] / std::max(n[c], 1.0);
    a[c] = var > 0 ? (sor[c] - so[c] * sr[c] / std::max(n[c], 1.0)) / var : 1;
    b[c] = n[c] ? (sr[c] - a[c] * so[c]) / n[c] : 0;
  }
  after = rel_error(affine(ours, axis, a, b), ref);
  if (explained(after, before)) {
    bool unit_scale = true;
    for (double x : a) unit_scale &= std::fabs(x - 1) < 1e-3;
    if (unit_scale) return std::nullopt;  // case 1 would have caught it
    return Finding{
        {"input_mean", name,
         "the reference's input is ours x " + channels_text(a) + " + " + channels_text(b) +
             " per channel (a different mean/std normalization; relative error " + fmt(before) +
             " -> " + fmt(after) + ")"},
        after};
  }
  return std::nullopt;
}

std::optional<Finding> input_layout(const std::string& name, const Tensor& ours, const Tensor& ref,
                                    bool channels_last, double, double) {
  if (ours.rank() != 4 || ours.numel() != ref.numel()) return std::nullopt;
  const Shape& s = ours.shape();
  const double before = ours.shape() == ref.shape() ? rel_error(ours, ref) : INFINITY;
  // channels-last model: (N, H, W, C); channels-first: (N, C, H, W)
  const std::vector<int> to_first{0, 3, 1, 2}, to_last{0, 2, 3, 1};
  struct Cand {
    Tensor t;
    std::string what;
  };
  std::vector<Cand> cands;
  const char* mine = channels_last ? "NHWC" : "NCHW";
  const char* other = channels_last ? "NCHW" : "NHWC";
  // the reference holds the same image in the other layout (other shape)
  cands.push_back(
      {transpose(ours, channels_last ? to_first : to_last),
       std::string("the reference's input is laid out ") + other + " and ours " + mine});
  // ours holds the data of the other layout read as this one, and the reverse
  Shape other_shape = channels_last ? Shape{s[0], s[3], s[1], s[2]} : Shape{s[0], s[2], s[3], s[1]};
  cands.push_back({transpose(as_shape(ours, other_shape), channels_last ? to_last : to_first),
                   std::string("our input holds ") + other + " data read as " + mine +
                       " (the reference's input is it transposed to " + mine + ")"});
  cands.push_back({as_shape(transpose(ours, channels_last ? to_first : to_last), s),
                   std::string("the reference's input holds ") + mine + " data read as " + other +
                       " (ours is the correct " + mine + " tensor)"});
  std::optional<Finding> best;
  for (auto& c : cands) {
    double after = rel_error(c.t, ref);
    if (!std::isfinite(after) || after >= 1e-3 || (std::isfinite(before) && after >= 0.01 * before))
      continue;
    if (!best || after < best->after)
      best =
          Finding{{"input_layout", name,
                   "input layout NHWC/NCHW mixed up: " + c.what + " (relative error " +
                       (std::isfinite(before) ? fmt(before) : std::string("n/a, shapes differ")) +
                       " -> " + fmt(after) + "); check --layout"},
                  after};
  }
  return best;
}

std::vector<Finding> diagnose_input(const std::string& name, const Tensor& ours, const Tensor& ref,
                                    bool channels_last, double rtol, double atol) {
  std::vector<Finding> r;
  for (auto* f : {input_channel_order, input_scale, input_mean, input_layout})
    if (auto x = f(name, ours, ref, channels_last, rtol, atol)) r.push_back(*x);
  return r;  // in order of priority: the simplest transformation first
}

std::optional<Finding> probe_input_transforms(const Probe& p, int input_value, bool channels_last) {
  auto it = p.inputs.find(input_value);
  if (it == p.inputs.end()) return std::nullopt;
  const Value& iv = p.graph->values[static_cast<size_t>(input_value)];
  const Tensor src = to_source(iv, it->second);
  const int axis = channel_axis(src, channels_last);
  struct Cand {
    std::string cause;
    Tensor t;  // source layout
    std::string what;
  };
  std::vector<Cand> cands;
  if (axis >= 0 && src.dim(axis) >= 2)
    cands.push_back(
        {"input_channel_order", reverse_channels(src, axis),
         "the layer matches the reference when our input's channels are reversed (RGB vs BGR)"});
  cands.push_back({"input_scale", affine(src, -1, {255.0}, {0}),
                   "the layer matches the reference when our input is multiplied by 255 (the "
                   "reference was fed pixels in [0, 255])"});
  cands.push_back(
      {"input_scale", affine(src, -1, {1 / 255.0}, {0}),
       "the layer matches the reference when our input is divided by 255 (--divide 255)"});
  if (axis >= 0 && src.dim(axis) == 3) {
    for (int order = 0; order < 2; ++order)
      for (const double* m : {kMean255, kMean1})
        for (double sign : {-1.0, 1.0}) {
          std::vector<double> ones(3, 1.0), b(3);
          for (int c = 0; c < 3; ++c) b[static_cast<size_t>(c)] = sign * m[order ? 2 - c : c];
          std::vector<double> shown(3);
          for (int c = 0; c < 3; ++c) shown[static_cast<size_t>(c)] = m[order ? 2 - c : c];
          cands.push_back(
              {"input_mean", affine(src, axis, ones, b),
               std::string("the layer matches the reference when the per-channel mean ") +
                   channels_text(shown) + (sign < 0 ? " is subtracted from" : " is added back to") +
                   " our input"});
        }
  }
  if (src.rank() == 4) {
    const Shape& s = src.shape();
    Shape other = channels_last ? Shape{s[0], s[3], s[1], s[2]} : Shape{s[0], s[2], s[3], s[1]};
    cands.push_back({"input_layout",
                     transpose(as_shape(src, other), channels_last ? std::vector<int>{0, 2, 3, 1}
                                                                   : std::vector<int>{0, 3, 1, 2}),
                     "the layer matches the reference when our input's data is read in the other "
                     "layout (NHWC/NCHW mixed up)"});
  }
  std::optional<Finding> best;
  for (auto& c : cands) {
    std::map<int, Tensor> ins = p.inputs;
    ins[input_value] = to_canonical(iv, c.t.to(iv.dtype));
    double after = p.error_of(*p.graph, &ins);
    if (!p.explains(after)) continue;
    if (!best || after < best->after)
      best = Finding{{c.cause, iv.prov.source_name.empty() ? iv.name : iv.prov.source_name,
                      c.what + " (relative error " + fmt(p.before) + " -> " + fmt(after) + ")"},
                     after};
  }
  return best;
}

}  // namespace anvil::diag
