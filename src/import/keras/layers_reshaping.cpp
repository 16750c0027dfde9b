// Keras reshaping layers: Flatten, Reshape, Permute, RepeatVector, ZeroPadding1D-3D,
// Cropping1D-3D, UpSampling1D-3D.
#include <algorithm>

#include "import/keras/keras_translator.h"

namespace anvil::keras {

namespace {

KT pad_or_crop(Translator& t, const KT& x, int nd, bool crop) {
  bool cl = t.channels_last();
  int r = t.rank(x.v);
  if (r != nd + 2) t.fail("input", "expects a rank-" + std::to_string(nd + 2) + " input");
  const char* key = crop ? "cropping" : "padding";
  // normalize to nd (begin, end) pairs
  std::vector<std::pair<int64_t, int64_t>> pr(static_cast<size_t>(nd),
                                              {crop ? 0 : 1, crop ? 0 : 1});
  if (t.has(key)) {
    const json& j = t.C()[key];
    auto as_int = [&](const json& e) {
      if (!e.is_number_integer() || e.get<int64_t>() < 0 || e.get<int64_t>() > (int64_t{1} << 24))
        t.fail(key, "bad value " + j.dump());
      return e.get<int64_t>();
    };
    if (j.is_number_integer()) {
      for (auto& p : pr) p = {as_int(j), as_int(j)};
    } else if (j.is_array() && static_cast<int>(j.size()) == nd) {
      for (int q = 0; q < nd; ++q) {
        const json& e = j[static_cast<size_t>(q)];
        if (e.is_number_integer())
          pr[static_cast<size_t>(q)] = {as_int(e), as_int(e)};
        else if (e.is_array() && e.size() == 2)
          pr[static_cast<size_t>(q)] = {as_int(e[0]), as_int(e[1])};
        else
          t.fail(key, "bad value " + j.dump());
      }
    } else if (j.is_array() && nd == 1 && j.size() == 2) {
      pr[0] = {as_int(j[0]), as_int(j[1])};
    } else {
      t.fail(key, "bad value " + j.dump());
    }
  }
  // Keras spatial axis q is source axis (cl ? 1+q : 2+q); map to canonical.
  if (crop) {
    std::vector<int64_t> starts, ends, axes;
    Shape ss = t.src_shape(x);
    for (int q = 0; q < nd; ++q) {
      int sa = cl ? 1 + q : 2 + q;
      int64_t n = ss[static_cast<size_t>(sa)];
      auto [b0, e0] = pr[static_cast<size_t>(q)];
      if (b0 + e0 >= n) t.fail(key, "cropping removes the whole axis");
      starts.push_back(b0);
      ends.push_back(n - e0);
      axes.push_back(t.canon_axis(x, sa));
    }
    int y =
        t.node("Slice", {x.v, t.i64s("starts", starts), t.i64s("ends", ends), t.i64s("axes", axes)},
               {}, true);
    return KT{y, x.perm};
  }
  std::vector<int64_t> pads(static_cast<size_t>(2 * r), 0);
  for (int q = 0; q < nd; ++q) {
    int ca = t.canon_axis(x, cl ? 1 + q : 2 + q);
    pads[static_cast<size_t>(ca)] = pr[static_cast<size_t>(q)].first;
    pads[static_cast<size_t>(ca + r)] = pr[static_cast<size_t>(q)].second;
  }
  Attributes a;
  a.set("mode", std::string("constant"));
  int y = t.node("Pad", {x.v, t.i64s("pads", pads)}, a, true);
  return KT{y, x.perm};
}

KT upsample(Translator& t, const KT& x, int nd) {
  bool cl = t.channels_last();
  if (t.rank(x.v) != nd + 2) t.fail("input", "expects a rank-" + std::to_string(nd + 2) + " input");
  int xv = t.as_cf(x, cl);
  std::vector<int64_t> size =
      nd == 1 ? std::vector<int64_t>{t.i("size", 2)} : t.tuple("size", nd, 2);
  for (int64_t v : size)
    if (v < 1 || v > 4096) t.fail("size", "bad upsampling size");
  std::string interp = t.s("interpolation", "nearest");
  Attributes a;
  if (interp == "nearest") {
    a.set("mode", std::string("nearest"));
    a.set("coordinate_transformation_mode", std::string("asymmetric"));
    a.set("nearest_mode", std::string("floor"));
  } else if (interp == "bilinear") {
    a.set("mode", std::string("linear"));
    // Keras 2 (TF1 resize_bilinear, align_corners=False) and Theano's bilinear_upsampling both
    // sample at dst/scale (asymmetric); tf.keras >= 2.4 and Keras 3 use half-pixel centers.
    a.set("coordinate_transformation_mode",
          std::string(t.tf_keras() ? "half_pixel" : "asymmetric"));
  } else {
    t.fail("interpolation", "unsupported interpolation '" + interp + "'");
  }
  // integer sizes (not float scales): exact, and not counted as parameters by summary()
  Shape xs = t.shape(xv);
  std::vector<int64_t> sizes{xs[0], xs[1]};
  for (size_t q = 0; q < size.size(); ++q) sizes.push_back(xs[q + 2] * size[q]);
  int roi = t.cst("roi", Tensor::from_vector<float>({0}, {}));
  int sc = t.cst("scales", Tensor::from_vector<float>({0}, {}));
  int y = t.node("Resize", {xv, roi, sc, t.i64s("sizes", sizes)}, a, true);
  return t.cf_out(y, cl);
}

template <int ND, bool CROP>
std::vector<KT> pad_or_crop_layer(Translator& t, const std::vector<KT>& ins) {
  return {pad_or_crop(t, t.one(ins), ND, CROP)};
}

template <int ND>
std::vector<KT> upsample_layer(Translator& t, const std::vector<KT>& ins) {
  return {upsample(t, t.one(ins), ND)};
}

std::vector<KT> flatten_layer(Translator& t, const std::vector<KT>& ins) {
  const KT& x = t.one(ins);
  int r = t.rank(x.v);
  bool cl = t.channels_last();
  int xv;
  if (!cl && r >= 3) {
    // Keras: Flatten(data_format="channels_first") moves channels last before flattening
    // (so that the Dense weights are portable across data formats).
    std::vector<int> q{0};
    for (int k = 2; k < r; ++k) q.push_back(k);
    q.push_back(1);
    xv = t.view(x, q);
  } else {
    xv = t.as_source(x);
  }
  Attributes a;
  a.set("axis", int64_t{1});
  return {KT{t.node("Flatten", {xv}, a, true), {}}};
}

std::vector<KT> reshape_layer(Translator& t, const std::vector<KT>& ins) {
  const KT& x = t.one(ins);
  int xv = t.as_source(x);
  Shape xs = t.shape(xv);
  if (!t.has("target_shape") || !t.C()["target_shape"].is_array())
    t.fail("target_shape", "missing target_shape");
  std::vector<int64_t> ts{xs[0]};
  int64_t known = 1;
  int neg = -1;
  for (const auto& e : t.C()["target_shape"]) {
    if (!e.is_number_integer()) t.fail("target_shape", "expected integers");
    int64_t v = e.get<int64_t>();
    if (v == -1) {
      if (neg >= 0) t.fail("target_shape", "more than one -1");
      neg = static_cast<int>(ts.size());
      ts.push_back(-1);
      continue;
    }
    if (v < 1 || v > kMaxTensorElements)
      t.fail("target_shape", "bad dimension " + std::to_string(v));
    if (known > kMaxTensorElements / v) t.fail("target_shape", "hostile size");
    known *= v;
    ts.push_back(v);
  }
  int64_t total = 1;
  for (size_t k = 1; k < xs.size(); ++k) total *= xs[k];
  if (neg >= 0) {
    if (known == 0 || total % known != 0)
      t.fail("target_shape",
             "cannot reshape " + shape_str(xs) + " to " + t.C()["target_shape"].dump());
    ts[static_cast<size_t>(neg)] = total / known;
  } else if (known != total) {
    t.fail("target_shape",
           "cannot reshape " + shape_str(xs) + " to " + t.C()["target_shape"].dump());
  }
  return {KT{t.node("Reshape", {xv, t.i64s("shape", ts)}, {}, true), {}}};
}

std::vector<KT> permute_layer(Translator& t, const std::vector<KT>& ins) {
  const KT& x = t.one(ins);
  if (!t.has("dims") || !t.C()["dims"].is_array()) t.fail("dims", "missing dims");
  std::vector<int> q{0};
  for (const auto& e : t.C()["dims"]) {
    if (!e.is_number_integer()) t.fail("dims", "expected integers");
    q.push_back(e.get<int>());
  }
  int r = t.rank(x.v);
  std::vector<int> chk = q;
  std::sort(chk.begin(), chk.end());
  if (static_cast<int>(q.size()) != r || !imp::is_identity_perm(chk))
    t.fail("dims", "dims must be a permutation of 1.." + std::to_string(r - 1));
  std::vector<int> comp(q.size());
  for (size_t k = 0; k < q.size(); ++k)
    comp[k] = x.perm.empty() ? q[k] : x.perm[static_cast<size_t>(q[k])];
  Attributes a;
  a.set("perm", std::vector<int64_t>(comp.begin(), comp.end()));
  return {KT{t.node("Transpose", {x.v}, a, true), {}}};
}

std::vector<KT> repeat_vector_layer(Translator& t, const std::vector<KT>& ins) {
  const KT& x = t.one(ins);
  int64_t n = t.i("n", -1);
  if (n < 1 || n > (int64_t{1} << 24)) t.fail("n", "bad repeat count");
  int xv = t.as_source(x);
  Shape xs = t.shape(xv);
  if (xs.size() != 2) t.fail("input", "RepeatVector needs a rank-2 input");
  int u = t.node("Reshape", {xv, t.i64s("shape", {xs[0], 1, xs[1]})});
  return {KT{t.node("Expand", {u, t.i64s("expand_shape", {xs[0], n, xs[1]})}, {}, true), {}}};
}

const ConverterRegistrar reshaping_layers({
    {"Flatten", flatten_layer},
    {"Reshape", reshape_layer},
    {"Permute", permute_layer},
    {"RepeatVector", repeat_vector_layer},
    {"ZeroPadding1D", pad_or_crop_layer<1, false>},
    {"ZeroPadding2D", pad_or_crop_layer<2, false>},
    {"ZeroPadding3D", pad_or_crop_layer<3, false>},
    {"Cropping1D", pad_or_crop_layer<1, true>},
    {"Cropping2D", pad_or_crop_layer<2, true>},
    {"Cropping3D", pad_or_crop_layer<3, true>},
    {"UpSampling1D", upsample_layer<1>},
    {"UpSampling2D", upsample_layer<2>},
    {"UpSampling3D", upsample_layer<3>},
});

}  // namespace

}  // namespace anvil::keras
