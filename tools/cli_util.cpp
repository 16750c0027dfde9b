#include "cli_util.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <sstream>

#include "anvil/error.h"
#include "anvil/names.h"
#include "anvil/npy.h"
#include "anvil/preprocess.h"

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
    while (!what.empty() && (what.back() == ' ' || what.back() == '.')) what.pop_back();
    std::fprintf(stderr, "%s: error: %s; run '%s --help'\n", app.get_name().c_str(), what.c_str(),
                 app.get_name().c_str());
    return 2;
  }
  return -1;
}

CLI::Validator non_negative_number(const std::string& example) {
  return CLI::Validator(
      [example](std::string& s) -> std::string {
        size_t used = 0;
        double v = 0;
        try {
          v = std::stod(s, &used);
        } catch (const std::exception&) {
          used = 0;
        }
        if (used == 0 || used != s.size() || !std::isfinite(v) || v < 0)
          return "expected a number >= 0, e.g. " + example + ", got '" + s + "'";
        return {};
      },
      "NUMBER >= 0", "non_negative_number");
}

CLI::Validator whole_number(long long lo, long long hi) {
  return CLI::Validator(
      [lo, hi](std::string& s) -> std::string {
        size_t used = 0;
        long long v = 0;
        try {
          v = std::stoll(s, &used);
        } catch (const std::exception&) {
          used = 0;
        }
        if (used == 0 || used != s.size() || v < lo || v > hi)
          return "expected a whole number from " + std::to_string(lo) + " to " +
                 std::to_string(hi) + ", got '" + s + "'";
        return {};
      },
      "INT in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]", "whole_number");
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

std::string extension(const std::string& path) {
  return lower(fs::path(path).extension().string());
}

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
      throw Error("expected a number or a comma-separated list of numbers, got '" + s + "'", {}, {},
                  field);
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
  for (const auto& mi : inputs)
    r += (r.empty() ? "" : ", ") + mi.source_name + " " + shape_str(mi.shape);
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
  int input = -1;     // index into the model's inputs
  std::string path;   // the file it came from (for messages)
  std::string image;  // an image file still to load ("" for arrays)
  Tensor tensor;
};

std::string floats_str(const std::vector<float>& v) {
  std::string r;
  char buf[32];
  for (float f : v) {
    std::snprintf(buf, sizeof buf, "%g", static_cast<double>(f));
    r += (r.empty() ? "" : ",") + std::string(buf);
  }
  return r;
}

std::string meta(const Graph& g, const std::string& key) {
  auto it = g.metadata.find(key);
  return it == g.metadata.end() ? std::string() : it->second;
}

// True when the Caffe transform_param recorded by the importer applies to this input.
bool has_transform(const Graph& g, const ModelInput& mi) {
  std::stringstream ss(meta(g, "caffe.transform.inputs"));
  std::string item;
  while (std::getline(ss, item, ','))
    if (item == mi.source_name || item == mi.name) return true;
  return false;
}

// A transform_param mean_file: as written (Caffe resolves it from the working directory),
// else next to the prototxt.
std::string resolve_mean_file(const std::string& f, const std::string& model_file) {
  if (file_exists(f) || fs::path(f).is_absolute()) return f;
  std::string alt = (fs::path(model_file).parent_path() / f).string();
  return file_exists(alt) ? alt : f;
}

Tensor load_image_for(const std::string& path, const ModelInput& mi, const ImageArgs& a,
                      const Graph& g, const std::string& model_file, std::string* note) {
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
    if (std::sscanf(a.size.c_str(), "%d%c%d%c", &w, &x, &h, &extra) != 3 ||
        (x != 'x' && x != 'X') || w <= 0 || h <= 0)
      throw Error("expected WxH (e.g. 224x224), got '" + a.size + "'", {}, {}, "size");
    pre.width = w;
    pre.height = h;
  } else if (known(hdim) && known(wdim) && mi.shape[hdim] > 0 && mi.shape[wdim] > 0 &&
             mi.shape[hdim] <= (1 << 16) && mi.shape[wdim] <= (1 << 16)) {
    pre.width = static_cast<int>(mi.shape[wdim]);
    pre.height = static_cast<int>(mi.shape[hdim]);
  }
  // Caffe: BGR by convention, and the input layer's transform_param, unless flags override.
  const bool caffe_bgr = meta(g, "image.channel_order") == "BGR";
  const bool tp = has_transform(g, mi);
  if (a.channels)
    pre.channels = a.channels;
  else if (known(cdim) && (mi.shape[cdim] == 1 || mi.shape[cdim] == 3))
    pre.channels = static_cast<int>(mi.shape[cdim]);
  else if (tp && meta(g, "caffe.transform.force_color") == "1")
    pre.channels = 3;
  else if (tp && meta(g, "caffe.transform.force_gray") == "1")
    pre.channels = 1;
  pre.bgr = a.bgr || (caffe_bgr && !a.rgb);
  pre.divide = a.divide;
  std::vector<float> mean = parse_floats(a.mean, "mean");
  std::vector<float> scale = parse_floats(a.scale, "scale");
  std::string mean_file = a.mean_file;
  std::string scale_from = scale.empty() ? "" : " (--scale)";
  std::string mean_from = mean.empty() ? "" : " (--mean)";
  if (!mean.empty() && !mean_file.empty())
    throw Error("give --mean or --mean-file, not both", {}, {}, "mean-file");
  if (!mean_file.empty()) mean_from = " (--mean-file)";
  if (tp && scale.empty() && !meta(g, "caffe.transform.scale").empty()) {
    scale = parse_floats(meta(g, "caffe.transform.scale"), "caffe.transform.scale");
    scale_from = " (transform_param)";
  }
  if (tp && mean.empty() && mean_file.empty()) {
    if (!meta(g, "caffe.transform.mean_value").empty()) {
      mean = parse_floats(meta(g, "caffe.transform.mean_value"), "caffe.transform.mean_value");
      mean_from = " (transform_param)";
    } else if (!meta(g, "caffe.transform.mean_file").empty()) {
      mean_file = resolve_mean_file(meta(g, "caffe.transform.mean_file"), model_file);
      mean_from = " (transform_param)";
    }
  }
  Tensor t;
  std::string mean_text = mean.empty() ? "none" : floats_str(mean);
  try {
    if (mean_file.empty()) {
      pre.mean = mean;
      pre.scale = scale;
      t = load_image(path, pre);
    } else {
      if (!file_exists(mean_file)) throw Error("mean file not found", mean_file, {}, "mean-file");
      Tensor m;
      try {
        m = read_caffe_mean(mean_file);
      } catch (const Error& e) {
        throw e.with_file(mean_file);
      }
      Tensor img = load_image(path, pre);
      try {
        t = subtract_mean_image(img, m, scale, pre.nchw);
      } catch (const Error& e) {
        throw e.with_file(mean_file);
      }
      mean_text = "image " + mean_file + " " + shape_str(m.shape());
      const int64_t h = t.dim(pre.nchw ? 2 : 1), w = t.dim(pre.nchw ? 3 : 2);
      if (m.dim(1) != h || m.dim(2) != w) mean_text += " center-cropped";
    }
  } catch (const Error& e) {
    if (!e.file().empty()) throw;
    throw e.with_file(path);
  }
  if (note) {
    const int64_t c = t.dim(pre.nchw ? 1 : 3);
    std::string order = c == 1 ? "grey" : pre.bgr ? "BGR" : "RGB";
    if (c != 1 && pre.bgr && !a.bgr) order += " (Caffe default; --rgb for RGB)";
    char div[32];
    std::snprintf(div, sizeof div, "%g", static_cast<double>(pre.divide));
    *note = "preprocess " + mi.source_name + " <- " + path + ": order " + order + ", divide " +
            div + ", mean " + mean_text + mean_from + ", scale " +
            (scale.empty() ? std::string("1") : floats_str(scale)) + scale_from + ", layout " +
            (pre.nchw ? "NCHW " : "NHWC ") + shape_str(t.shape());
    if (tp && !meta(g, "caffe.transform.crop_size").empty())
      *note += " (transform_param crop_size " + meta(g, "caffe.transform.crop_size") +
               ": the image is resized to the input size, the mean center-cropped)";
  }
  return t;
}

Graph import_with(const std::vector<std::string>& files, const ImportOptions& o) {
  return import_model(files, o);
}

// Marks the dims the importer filled in (they change with ImportOptions::default_dim).
void detect_dynamic(const std::vector<std::string>& files, std::vector<ModelInput>& inputs,
                    const std::map<std::string, Shape>& explicit_shapes) {
  ImportOptions o;
  o.default_dim = 3;
  o.input_shapes = explicit_shapes;
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

std::pair<std::string, Shape> parse_shape_arg(const std::string& spec) {
  auto bad = [&](const std::string& why) {
    return Error("--shape expects NAME=D1,D2,... or D1,D2,... (e.g. data=1,3,224,224), got '" +
                     spec + "': " + why,
                 {}, {}, "shape");
  };
  std::string name, dims = spec;
  if (size_t eq = spec.rfind('='); eq != std::string::npos) {
    name = spec.substr(0, eq);
    dims = spec.substr(eq + 1);
    if (name.empty()) throw bad("empty name before '='");
  }
  if (dims.empty()) throw bad("no dimensions");
  Shape shape;
  std::stringstream ss(dims);
  std::string item;
  while (std::getline(ss, item, ',')) {
    size_t b = item.find_first_not_of(" \t"), e = item.find_last_not_of(" \t");
    std::string d = b == std::string::npos ? "" : item.substr(b, e - b + 1);
    if (d.empty() || d.size() > 12 || d.find_first_not_of("0123456789") != std::string::npos)
      throw bad("'" + item + "' is not a dimension (an integer >= 0)");
    shape.push_back(std::stoll(d));
  }
  if (dims.back() == ',') throw bad("trailing ','");
  return {name, shape};
}

bool is_image_file(const std::string& path) {
  static const std::set<std::string> exts = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tga",
                                             ".ppm", ".pgm", ".pnm",  ".psd", ".hdr", ".pic"};
  return exts.count(extension(path)) != 0;
}

std::string input_file_kind(const std::string& path) {
  const std::string ext = extension(path);
  if (ext == ".npy") return "npy";
  if (ext == ".npz") return "npz";
  if (is_image_file(path)) return "image";
  // Another or no extension: by content (a renamed .npy, an image without its extension).
  std::string head(8, '\0');
  {
    std::ifstream f(path, std::ios::binary);
    f.read(head.data(), static_cast<std::streamsize>(head.size()));
    head.resize(static_cast<size_t>(std::max<std::streamsize>(f.gcount(), 0)));
  }
  auto starts = [&](const char* magic, size_t n) {
    return head.size() >= n && head.compare(0, n, magic, n) == 0;
  };
  if (starts("\x93NUMPY", 6)) return "npy";
  if (starts("\x89PNG", 4) || starts("\xFF\xD8\xFF", 3) || starts("BM", 2) || starts("GIF8", 4) ||
      starts("8BPS", 4) || starts("#?RADIANCE", 8) ||
      (head.size() >= 2 && head[0] == 'P' && head[1] >= '1' && head[1] <= '6'))
    return "image";
  const bool webp = starts("RIFF", 4), tiff = starts("II*\0", 4) || starts("MM\0*", 4);
  throw Error(
      std::string("unsupported input file type") +
          (webp          ? " (a WebP image)"
           : tiff        ? " (a TIFF image)"
           : ext.empty() ? ""
                         : " '" + ext + "'") +
          ": --input reads .npy, .npz and images (.png .jpg .jpeg .bmp .gif .tga .ppm .pgm .pnm "
          ".psd .hdr .pic)" +
          (webp || tiff ? "; convert it to .png" : ""),
      path, {}, "input");
}

void ImageArgs::add_to(CLI::App& app) {
  app.add_option("--size", size, "image inputs: resize to WxH (default: the model input's size)");
  auto* bgr_flag =
      app.add_flag("--bgr", bgr, "image inputs: reorder RGB to BGR (the default for Caffe models)");
  app.add_flag("--rgb", rgb, "image inputs: keep RGB order, also for Caffe models")
      ->excludes(bgr_flag);
  app.add_option("--mean-file", mean_file,
                 "image inputs: subtract a Caffe mean image (.binaryproto, C x H x W) per pixel, "
                 "after --divide and before --scale; its H, W must equal the input's or be "
                 "larger (center-cropped, like Caffe's TEST-phase crop). A Caffe input layer's "
                 "transform_param (scale, mean_value, mean_file, force_color) applies by "
                 "default; these flags override it");
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
  app.add_option("--shape", shapes,
                 "NAME=D1,D2,... or D1,D2,... (single-input model): import the model with this "
                 "input shape, e.g. another batch size or image size; may change dims the model "
                 "fixes (without --shape, an input whose fixed dims differ is an error). Keras "
                 "models accept it only for their open (None) dims; repeat for several inputs")
      ->allow_extra_args(false);
  app.add_flag("--dequantize", dequantize,
               "quantized models (TFLite int8/uint8/int16): the outputs come back as float32, "
               "scale * (q - zero_point), instead of their stored integer type");
  image.add_to(app);
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
      if (v.prov.to_source == std::vector<int>{0, 2, 3, 1} || fw == "keras" || fw == "tensorflow" ||
          fw == "tflite")
        mi.layout = "NHWC";
      else if (v.prov.to_source.empty())
        mi.layout = "NCHW";
    }
    mi.dynamic.assign(mi.shape.size(), false);
    r.push_back(std::move(mi));
  }
  return r;
}

std::map<std::string, Shape> shape_overrides(const std::vector<std::string>& specs,
                                             const std::vector<ModelInput>& inputs,
                                             const std::string& model) {
  std::map<std::string, Shape> explicit_shapes;
  for (const auto& spec : specs) {
    auto [name, shape] = parse_shape_arg(spec);
    int k = -1;
    if (name.empty()) {
      if (inputs.size() != 1)
        throw Error("--shape without a NAME needs a single-input model (its inputs: " +
                        input_names(inputs) + ")",
                    model, {}, "shape");
      k = 0;
    } else {
      k = find_input(inputs, name);
      if (k < 0)
        throw Error("--shape: the model has no input named '" + name +
                        "' (its inputs: " + input_names(inputs) + ")",
                    model, {}, "shape");
    }
    const ModelInput& mi = inputs[static_cast<size_t>(k)];
    if (shape.size() != mi.shape.size())
      throw Error("--shape " + shape_str(shape) + " for input '" + mi.source_name + "' has rank " +
                      std::to_string(shape.size()) + ", the model's input " + shape_str(mi.shape) +
                      " has rank " + std::to_string(mi.shape.size()),
                  model, {}, "shape");
    if (explicit_shapes.count(mi.source_name))
      throw Error("--shape is given twice for input '" + mi.source_name + "'", model, {}, "shape");
    explicit_shapes[mi.source_name] = shape;
  }
  return explicit_shapes;
}

PreparedModel prepare_model(const std::vector<std::string>& files, const InputArgs& args,
                            bool random_fill, uint32_t seed) {
  if (files.empty()) throw Error("no model file given", {}, {}, "model");
  PreparedModel pm;
  ImportOptions base;
  base.dequantize_outputs = args.dequantize;
  pm.graph = import_with(files, base);
  pm.inputs = model_inputs(pm.graph);
  const std::string model = files.front();

  // 0. --shape overrides, keyed by the source names the importers use.
  std::map<std::string, Shape> explicit_shapes = shape_overrides(args.shapes, pm.inputs, model);
  if (!explicit_shapes.empty()) {
    ImportOptions o = base;
    o.input_shapes = explicit_shapes;
    try {
      pm.graph = import_with(files, o);
    } catch (const Error& e) {
      throw Error("the model cannot be imported with --shape: " + e.message(), e.file(), e.node(),
                  "shape");
    }
    pm.inputs = model_inputs(pm.graph);
  }
  bool dynamic_known = false;
  auto ensure_dynamic = [&] {
    if (!dynamic_known) detect_dynamic(files, pm.inputs, explicit_shapes);
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
        throw Error("the model has no input named '" + a.name +
                        "' (its inputs: " + input_names(pm.inputs) + ")",
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
            throw Error("array '" + key +
                            "' names no model input (its inputs: " + input_names(pm.inputs) + ")",
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
    const std::string kind = input_file_kind(a.path);
    if (kind == "image") {
      given.push_back({k, a.path, a.path, Tensor()});
    } else {
      given.push_back({k, a.path, "", read_npy(a.path)});
    }
  }

  // 2. Images: sized, laid out and with the channels the model input expects.
  for (auto& g : given) {
    if (g.image.empty()) continue;
    if (args.image.size.empty()) ensure_dynamic();  // a free H/W is not a size to resize to
    std::string note;
    g.tensor = load_image_for(g.image, pm.inputs[static_cast<size_t>(g.input)], args.image,
                              pm.graph, model, &note);
    pm.notes.push_back(note);
  }

  // 3. Shapes: a given shape may differ from the model's only in dynamic dims.
  std::map<std::string, Shape> overrides;
  for (const auto& g : given) {
    const ModelInput& mi = pm.inputs[static_cast<size_t>(g.input)];
    if (g.tensor.shape() == mi.shape) continue;
    ensure_dynamic();
    bool ok = g.tensor.rank() == static_cast<int>(mi.shape.size());
    std::string which;
    for (size_t d = 0; ok && d < mi.shape.size(); ++d) {
      ok = g.tensor.shape()[d] == mi.shape[d] || mi.dynamic[d];
      if (!ok)
        which = ": dim " + std::to_string(d) + " is fixed at " + std::to_string(mi.shape[d]) +
                (explicit_shapes.count(mi.source_name)
                     ? std::string(" by --shape")
                     : " (give --shape " + mi.source_name +
                           "=... to import the model at another shape)");
    }
    if (!ok)
      throw Error("input '" + mi.source_name + "' has shape " + shape_str(g.tensor.shape()) +
                      ", the model expects " + dims_str(mi.shape, mi.dynamic) + which +
                      (g.image.empty() ? "" : " (set --size/--layout/--channels)"),
                  g.path, {}, "input");
    overrides[mi.source_name] = g.tensor.shape();
  }
  if (!overrides.empty()) {
    ImportOptions o = base;
    o.input_shapes = explicit_shapes;
    for (const auto& [n, sh] : overrides) o.input_shapes[n] = sh;
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
    case DType::f32:
      return "float32";
    case DType::f16:
      return "float16";
    case DType::bf16:
      return "float32";  // numpy has no bfloat16: written as float32
    case DType::f64:
      return "float64";
    case DType::i8:
      return "int8";
    case DType::u8:
      return "uint8";
    case DType::i16:
      return "int16";
    case DType::i32:
      return "int32";
    case DType::i64:
      return "int64";
    case DType::boolean:
      return "bool";
  }
  return dtype_name(t);
}

std::string output_path(const std::string& dir, const std::string& tensor_name) {
  return (fs::path(dir.empty() ? "." : dir) / (sanitize_tensor_name(tensor_name) + ".npy"))
      .string();
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
    std::snprintf(buf, sizeof buf, "%s%lld (%.4g)", i ? "  " : "",
                  static_cast<long long>(v[i].second), v[i].first);
    r += buf;
  }
  return r;
}

std::string backend_help(const std::string& default_name) {
  std::vector<std::string> names = backend_names();
  std::sort(names.begin(), names.end());
  std::string r;
  for (const auto& n : names) r += (r.empty() ? "" : ", ") + n;
  return "backend: " + r + " (default: " + default_name + ")";
}

std::string default_backend() {
  for (const auto& b : backend_names())
    if (b == "cpu") return b;
  return "reference";
}

}  // namespace anvil::cli
