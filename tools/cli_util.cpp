#include "cli_util.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <random>
#include <set>
#include <sstream>

#include "anvil/error.h"
#include "anvil/names.h"
#include "anvil/npy.h"

namespace anvil::cli {
namespace fs = std::filesystem;

int parse_args(CLI::App& app, int argc, char** argv) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    std::fputs(app.help().c_str(), stdout);
    return 0;
  } catch (const CLI::CallForAllHelp&) {
    std::fputs(app.help("", CLI::AppFormatMode::All).c_str(), stdout);
    return 0;
  } catch (const CLI::ParseError& e) {
    std::string what = e.what();
    std::replace(what.begin(), what.end(), '\n', ' ');
    std::fprintf(stderr, "%s: error: %s\n\n%s", app.get_name().c_str(), what.c_str(),
                 app.help().c_str());
    return 2;
  }
  return -1;
}

namespace {
bool file_exists(const std::string& p) {
  std::error_code ec;
  return fs::is_regular_file(p, ec);
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string extension(const std::string& path) { return lower(fs::path(path).extension().string()); }

std::vector<float> parse_floats(const std::string& s, const std::string& field) {
  std::vector<float> r;
  if (s.empty()) return r;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    try {
      size_t used = 0;
      float v = std::stof(item, &used);
      while (used < item.size() && std::isspace(static_cast<unsigned char>(item[used]))) ++used;
      if (used != item.size() || !std::isfinite(v)) throw std::invalid_argument(item);
      r.push_back(v);
    } catch (const std::exception&) {
      throw Error("expected a number or a comma-separated list of numbers, got '" + s + "'", {},
                  {}, field);
    }
  }
  return r;
}

std::string dims_str(const Shape& s, const std::vector<bool>& dynamic) {
  std::string r = "(";
  for (size_t i = 0; i < s.size(); ++i) {
    if (i) r += ", ";
    r += (i < dynamic.size() && dynamic[i]) ? std::string("?") : std::to_string(s[i]);
  }
  if (s.size() == 1) r += ",";
  return r + ")";
}

std::string input_names(const std::vector<ModelInput>& inputs) {
  std::string r;
  for (const auto& mi : inputs) r += (r.empty() ? "" : ", ") + mi.source_name + " " + shape_str(mi.shape);
  return r;
}

int find_input(const std::vector<ModelInput>& inputs, const std::string& name) {
  for (size_t i = 0; i < inputs.size(); ++i)
    if (inputs[i].source_name == name) return static_cast<int>(i);
  for (size_t i = 0; i < inputs.size(); ++i)
    if (inputs[i].name == name) return static_cast<int>(i);
  return -1;
}

// One tensor to feed, before shapes are reconciled.
struct Given {
  int input = -1;        // index into the model's inputs
  std::string path;      // the file it came from (for messages)
  std::string image;     // an image file still to load ("" for arrays)
  Tensor tensor;
};

Tensor load_image_for(const std::string& path, const ModelInput& mi, const ImageArgs& a) {
  ImagePreprocess pre;
  std::string layout = lower(a.layout);
  if (layout.empty()) layout = (mi.layout == "NHWC" ? "nhwc" : "nchw");
  if (layout != "nchw" && layout != "nhwc")
    throw Error("expected nchw or nhwc, got '" + a.layout + "'", {}, {}, "layout");
  pre.nchw = layout == "nchw";
  const bool rank4 = mi.shape.size() == 4;
  auto known = [&](size_t d) { return rank4 && !(d < mi.dynamic.size() && mi.dynamic[d]); };
  const size_t cdim = pre.nchw ? 1 : 3, hdim = pre.nchw ? 2 : 1, wdim = pre.nchw ? 3 : 2;
  if (!a.size.empty()) {
    int w = 0, h = 0;
    char x = 0, extra = 0;
    if (std::sscanf(a.size.c_str(), "%d%c%d%c", &w, &x, &h, &extra) != 3 || (x != 'x' && x != 'X') ||
        w <= 0 || h <= 0)
      throw Error("expected WxH (e.g. 224x224), got '" + a.size + "'", {}, {}, "size");
    pre.width = w;
    pre.height = h;
  } else if (known(hdim) && known(wdim) && mi.shape[hdim] > 0 && mi.shape[wdim] > 0 &&
             mi.shape[hdim] <= (1 << 16) && mi.shape[wdim] <= (1 << 16)) {
    pre.width = static_cast<int>(mi.shape[wdim]);
    pre.height = static_cast<int>(mi.shape[hdim]);
  }
  if (a.channels)
    pre.channels = a.channels;
  else if (known(cdim) && (mi.shape[cdim] == 1 || mi.shape[cdim] == 3))
    pre.channels = static_cast<int>(mi.shape[cdim]);
  pre.bgr = a.bgr;
  pre.divide = a.divide;
  pre.mean = parse_floats(a.mean, "mean");
  pre.scale = parse_floats(a.scale, "scale");
  try {
    return load_image(path, pre);
  } catch (const Error& e) {
    throw e.with_file(path);
  }
}

Graph import_with(const std::vector<std::string>& files, const ImportOptions& o) {
  return import_model(files, o);
}

// Marks the dims the importer filled in (they change with ImportOptions::default_dim).
void detect_dynamic(const std::vector<std::string>& files, std::vector<ModelInput>& inputs) {
  ImportOptions o;
  o.default_dim = 3;
  std::vector<ModelInput> other = model_inputs(import_with(files, o));
  for (auto& mi : inputs) {
    mi.dynamic.assign(mi.shape.size(), false);
    int k = find_input(other, mi.source_name);
    if (k < 0 || other[static_cast<size_t>(k)].shape.size() != mi.shape.size()) continue;
    for (size_t d = 0; d < mi.shape.size(); ++d)
      mi.dynamic[d] = other[static_cast<size_t>(k)].shape[d] != mi.shape[d];
  }
}

}  // namespace

InputArg parse_input_arg(const std::string& spec) {
  if (spec.empty()) throw Error("empty --input", {}, {}, "input");
  if (file_exists(spec)) return {"", spec};
  size_t first = spec.find('=');
  if (first == std::string::npos) return {"", spec};
  for (size_t p = first; p != std::string::npos; p = spec.find('=', p + 1))
    if (p > 0 && file_exists(spec.substr(p + 1))) return {spec.substr(0, p), spec.substr(p + 1)};
  if (first == 0) throw Error("expected NAME=FILE or FILE, got '" + spec + "'", {}, {}, "input");
  return {spec.substr(0, first), spec.substr(first + 1)};
}

bool is_image_file(const std::string& path) {
  static const std::set<std::string> exts = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tga",
                                             ".ppm", ".pgm",  ".pnm", ".psd", ".hdr", ".pic"};
  return exts.count(extension(path)) != 0;
}

void ImageArgs::add_to(CLI::App& app) {
  app.add_option("--size", size, "image inputs: resize to WxH (default: the model input's size)");
  app.add_flag("--bgr", bgr, "image inputs: reorder RGB to BGR");
  app.add_option("--mean", mean, "image inputs: subtract a or a,b,c (after --divide)");
  app.add_option("--scale", scale, "image inputs: multiply by s or a,b,c (after --mean)");
  app.add_option("--divide", divide, "image inputs: divide pixel values 0..255 first (e.g. 255)");
  app.add_option("--layout", layout,
                 "image inputs: nchw or nhwc (default: the layout the model input expects)")
      ->check(CLI::IsMember({"nchw", "nhwc", "NCHW", "NHWC"}));
  app.add_option("--channels", channels, "image inputs: 1 or 3 (default: the model input's)")
      ->check(CLI::IsMember({1, 3}));
}

void InputArgs::add_to(CLI::App& app) {
  app.add_option("-i,--input", specs,
                 "NAME=FILE or FILE (.npy, .npz or an image); repeat for several inputs")
      ->allow_extra_args(false);
  image.add_to(app);
}

Shape source_shape(const Value& v) {
  if (v.prov.to_source.empty() || v.prov.to_source.size() != v.shape.size()) return v.shape;
  Shape s(v.shape.size());
  for (size_t i = 0; i < s.size(); ++i) {
    int p = v.prov.to_source[i];
    if (p < 0 || static_cast<size_t>(p) >= v.shape.size()) return v.shape;
    s[i] = v.shape[static_cast<size_t>(p)];
  }
  return s;
}

std::vector<ModelInput> model_inputs(const Graph& g) {
  std::vector<ModelInput> r;
  for (int i : g.inputs) {
    if (i < 0 || static_cast<size_t>(i) >= g.values.size()) continue;
    const Value& v = g.values[static_cast<size_t>(i)];
    ModelInput mi;
    mi.name = v.name;
    mi.source_name = v.prov.source_name.empty() ? v.name : v.prov.source_name;
    mi.dtype = v.dtype;
    mi.shape = source_shape(v);
    mi.layout = v.prov.source_layout;
    if (mi.layout.empty() && mi.shape.size() == 4) {
      // No label: a transposed input, or the framework's own convention.
      const std::string fw = v.prov.framework.empty() ? g.framework : v.prov.framework;
      if (v.prov.to_source == std::vector<int>{0, 2, 3, 1} || fw == "keras" ||
          fw == "tensorflow" || fw == "tflite")
        mi.layout = "NHWC";
      else if (v.prov.to_source.empty())
        mi.layout = "NCHW";
    }
    mi.dynamic.assign(mi.shape.size(), false);
    r.push_back(std::move(mi));
  }
  return r;
}

PreparedModel prepare_model(const std::vector<std::string>& files, const InputArgs& args,
                            bool random_fill, uint32_t seed) {
  if (files.empty()) throw Error("no model file given", {}, {}, "model");
  PreparedModel pm;
  pm.graph = import_with(files, {});
  pm.inputs = model_inputs(pm.graph);
  const std::string model = files.front();
  bool dynamic_known = false;
  auto ensure_dynamic = [&] {
    if (!dynamic_known) detect_dynamic(files, pm.inputs);
    dynamic_known = true;
  };

  // 1. Which file feeds which input.
  std::vector<Given> given;
  auto claim = [&](int k, const std::string& path) {
    for (const auto& g : given)
      if (g.input == k)
        throw Error("input '" + pm.inputs[static_cast<size_t>(k)].source_name +
                        "' is given twice (" + g.path + " and " + path + ")",
                    path, {}, "input");
  };
  for (const auto& spec : args.specs) {
    InputArg a = parse_input_arg(spec);
    if (!file_exists(a.path)) throw Error("file not found", a.path, {}, "input");
    int k = -1;
    if (!a.name.empty()) {
      k = find_input(pm.inputs, a.name);
      if (k < 0)
        throw Error("the model has no input named '" + a.name + "' (its inputs: " +
                        input_names(pm.inputs) + ")",
                    model, {}, "input");
    }
    const std::string ext = extension(a.path);
    if (ext == ".npz") {
      auto arrays = read_npz(a.path);
      if (!a.name.empty()) {
        auto it = arrays.find(a.name);
        if (it == arrays.end() && arrays.size() == 1) it = arrays.begin();
        if (it == arrays.end())
          throw Error("no array named '" + a.name + "' in the .npz", a.path, {}, "input");
        claim(k, a.path);
        given.push_back({k, a.path, "", it->second});
      } else {
        for (const auto& [key, t] : arrays) {
          int kk = find_input(pm.inputs, key);
          if (kk < 0 && pm.inputs.size() == 1 && arrays.size() == 1) kk = 0;
          if (kk < 0)
            throw Error("array '" + key + "' names no model input (its inputs: " +
                            input_names(pm.inputs) + ")",
                        a.path, {}, "input");
          claim(kk, a.path);
          given.push_back({kk, a.path, "", t});
        }
      }
      continue;
    }
    if (k < 0) {
      if (pm.inputs.size() != 1)
        throw Error("--input FILE without NAME= needs a model with one input; this model has " +
                        std::to_string(pm.inputs.size()) + ": " + input_names(pm.inputs) +
                        " (use --input NAME=FILE)",
                    a.path, {}, "input");
      k = 0;
    }
    claim(k, a.path);
    if (is_image_file(a.path)) {
      given.push_back({k, a.path, a.path, Tensor()});
    } else {
      given.push_back({k, a.path, "", read_npy(a.path)});
    }
  }

  // 2. Images: sized, laid out and with the channels the model input expects.
  for (auto& g : given) {
    if (g.image.empty()) continue;
    if (args.image.size.empty()) ensure_dynamic();  // a free H/W is not a size to resize to
    g.tensor = load_image_for(g.image, pm.inputs[static_cast<size_t>(g.input)], args.image);
  }

  // 3. Shapes: a given shape may differ from the model's only in dynamic dims.
  std::map<std::string, Shape> overrides;
  for (const auto& g : given) {
    const ModelInput& mi = pm.inputs[static_cast<size_t>(g.input)];
    if (g.tensor.shape() == mi.shape) continue;
    ensure_dynamic();
    bool ok = g.tensor.rank() == static_cast<int>(mi.shape.size());
    for (size_t d = 0; ok && d < mi.shape.size(); ++d)
      ok = g.tensor.shape()[d] == mi.shape[d] || mi.dynamic[d];
    if (!ok)
      throw Error("input '" + mi.source_name + "' has shape " + shape_str(g.tensor.shape()) +
                      ", the model expects " + dims_str(mi.shape, mi.dynamic) +
                      (g.image.empty() ? "" : " (set --size/--layout/--channels)"),
                  g.path, {}, "input");
    overrides[mi.source_name] = g.tensor.shape();
  }
  if (!overrides.empty()) {
    ImportOptions o;
    o.input_shapes = overrides;
    pm.graph = import_with(files, o);
    std::vector<ModelInput> again = model_inputs(pm.graph);
    for (auto& g : given) {
      const ModelInput& old = pm.inputs[static_cast<size_t>(g.input)];
      int k = find_input(again, old.source_name);
      if (k < 0 || again[static_cast<size_t>(k)].shape != g.tensor.shape())
        throw Error("input '" + old.source_name + "' has shape " + shape_str(g.tensor.shape()) +
                        ", the model expects " + dims_str(old.shape, old.dynamic) +
                        " and the importer did not accept the new shape",
                    g.path, {}, "input");
      again[static_cast<size_t>(k)].dynamic = old.dynamic;
      g.input = k;
    }
    pm.inputs = std::move(again);
  }

  // 4. The feed (dtypes converted within floats and within integers), and inputs not given.
  std::vector<bool> fed(pm.inputs.size(), false);
  for (auto& g : given) {
    const ModelInput& mi = pm.inputs[static_cast<size_t>(g.input)];
    if (g.tensor.dtype() != mi.dtype) {
      const DType have = g.tensor.dtype();
      if (is_float(have) && is_float(mi.dtype)) {
        g.tensor = g.tensor.to(mi.dtype);
      } else if (is_integer(have) && is_integer(mi.dtype)) {
        Tensor t = g.tensor.to(mi.dtype);
        if (t.to_int64s() != g.tensor.to_int64s())
          throw Error("input '" + mi.source_name + "' has values that do not fit " +
                          numpy_dtype_name(mi.dtype) + " (the model's dtype)",
                      g.path, {}, "input");
        g.tensor = t;
      } else
        throw Error("input '" + mi.source_name + "' has dtype " + numpy_dtype_name(have) +
                        ", the model expects " + numpy_dtype_name(mi.dtype),
                    g.path, {}, "input");
    }
    pm.feed[mi.name] = g.tensor;
    fed[static_cast<size_t>(g.input)] = true;
  }
  std::string missing;
  for (size_t i = 0; i < pm.inputs.size(); ++i) {
    if (fed[i]) continue;
    const ModelInput& mi = pm.inputs[i];
    if (random_fill) {
      pm.feed[mi.name] = random_tensor(mi.dtype, mi.shape, seed + static_cast<uint32_t>(i));
    } else {
      missing += (missing.empty() ? "" : ", ") + mi.source_name + " " + shape_str(mi.shape) + " " +
                 numpy_dtype_name(mi.dtype);
    }
  }
  if (!missing.empty())
    throw Error("missing input(s): " + missing + " (give --input NAME=FILE.npy)", model, {},
                "input");
  return pm;
}

Tensor random_tensor(DType dtype, const Shape& shape, uint32_t seed) {
  Tensor t(dtype, shape);
  if (!is_float(dtype)) return t;  // zeros: valid indices, ids and masks
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  for (int64_t i = 0; i < t.numel(); ++i) t.set(i, u(rng));
  return t;
}

std::string numpy_dtype_name(DType t) {
  switch (t) {
    case DType::f32: return "float32";
    case DType::f16: return "float16";
    case DType::bf16: return "float32";  // numpy has no bfloat16: written as float32
    case DType::f64: return "float64";
    case DType::i8: return "int8";
    case DType::u8: return "uint8";
    case DType::i16: return "int16";
    case DType::i32: return "int32";
    case DType::i64: return "int64";
    case DType::boolean: return "bool";
  }
  return dtype_name(t);
}

std::string output_path(const std::string& dir, const std::string& tensor_name) {
  return (fs::path(dir.empty() ? "." : dir) / (sanitize_tensor_name(tensor_name) + ".npy")).string();
}

std::string top_k_row(const Tensor& t, int64_t row, int k) {
  const int64_t cols = t.dim(1);
  std::vector<std::pair<double, int64_t>> v;
  v.reserve(static_cast<size_t>(cols));
  for (int64_t c = 0; c < cols; ++c) v.emplace_back(t.get(row * cols + c), c);
  const size_t n = std::min<size_t>(static_cast<size_t>(k), v.size());
  std::partial_sort(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(n), v.end(),
                    [](const auto& a, const auto& b) {
                      if (std::isnan(a.first) != std::isnan(b.first)) return std::isnan(b.first);
                      if (a.first != b.first) return a.first > b.first;
                      return a.second < b.second;
                    });
  std::string r;
  char buf[64];
  for (size_t i = 0; i < n; ++i) {
    std::snprintf(buf, sizeof buf, "%s%lld (%.4g)", i ? "  " : "", static_cast<long long>(v[i].second),
                  v[i].first);
    r += buf;
  }
  return r;
}

}  // namespace anvil::cli
