// The builder DSL (anvil/builder.h): each layer computes its explicit attributes, creates its
// weights as zero constants of the right shape, adds the node and runs the op's shape rule at
// once; a failure rolls the layer back and throws naming it.
#include "anvil/builder.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <random>

#include "anvil/error.h"
#include "anvil/ops.h"

namespace anvil {

// ---------------------------------------------------------------- TensorRef

namespace {
const Value& value_of(const Graph& g, int v, const char* what) {
  if (v < 0 || static_cast<size_t>(v) >= g.values.size())
    throw Error(std::string("TensorRef::") + what + ": the tensor does not belong to this builder");
  return g.values[static_cast<size_t>(v)];
}
}  // namespace

Shape TensorRef::shape() const {
  if (!valid()) throw Error("TensorRef::shape: empty tensor reference");
  return value_of(builder_->graph_, value_, "shape").shape;
}
DType TensorRef::dtype() const {
  if (!valid()) throw Error("TensorRef::dtype: empty tensor reference");
  return value_of(builder_->graph_, value_, "dtype").dtype;
}
std::string TensorRef::name() const {
  if (!valid()) throw Error("TensorRef::name: empty tensor reference");
  return value_of(builder_->graph_, value_, "name").name;
}

TensorRef operator+(const TensorRef& a, const TensorRef& b) {
  if (!a.valid()) throw Error("operator+: empty tensor reference");
  return a.builder()->add({a, b});
}

// ---------------------------------------------------------------- layer transactions

struct Builder::Pending {
  Builder& b;
  std::string name, kind;  // layer name and type (the node's source_op)
  size_t nodes, values, weights;
  bool committed = false;

  Pending(Builder& builder, const std::string& requested, const std::string& auto_base,
          std::string kind_)
      : b(builder),
        name(builder.layer_name(requested, auto_base)),
        kind(std::move(kind_)),
        nodes(builder.graph_.nodes.size()),
        values(builder.graph_.values.size()),
        weights(builder.weights_.size()) {}
  Pending(const Pending&) = delete;
  ~Pending() {
    if (committed) return;
    b.graph_.nodes.resize(nodes);
    b.graph_.values.resize(values);
    b.weights_.resize(weights);
  }
  [[noreturn]] void fail(const std::string& field, const std::string& message) const {
    throw Error(kind + ": " + message, {}, name, field);
  }
  void require(bool ok, const std::string& field, const std::string& message) const {
    if (!ok) fail(field, message);
  }
  int constant(const std::string& suffix, Tensor t) {
    return b.graph_.add_constant(b.graph_.unique_name(name + "/" + suffix), std::move(t));
  }
};

namespace {

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string size_str(Size2 s) {
  return "(" + std::to_string(s.h) + ", " + std::to_string(s.w) + ")";
}

/// Explicit pads [top, left, bottom, right] for a 2-D window, validated against the input.
template <class P>
std::vector<int64_t> window_pads(const P& p, const Shape& in, Size2 k, Size2 s, Size2 d,
                                 Padding padding, const std::vector<int64_t>& explicit_pads,
                                 bool ceil_mode = false) {
  p.require(in.size() == 4, "input", "expects an NCHW input of rank 4, got shape " + shape_str(in));
  p.require(k.h >= 1 && k.w >= 1, "kernel_shape", "kernel " + size_str(k) + " must be positive");
  p.require(s.h >= 1 && s.w >= 1, "strides", "stride " + size_str(s) + " must be positive");
  p.require(d.h >= 1 && d.w >= 1, "dilations", "dilation " + size_str(d) + " must be positive");
  const int64_t ins[2] = {in[2], in[3]}, ks[2] = {k.h, k.w}, ss[2] = {s.h, s.w}, ds[2] = {d.h, d.w};
  std::vector<int64_t> pads(4, 0);
  if (!explicit_pads.empty()) {
    p.require(explicit_pads.size() == 4, "pads",
              "explicit pads must have 4 values [top, left, bottom, right], found " +
                  std::to_string(explicit_pads.size()));
    for (int64_t v : explicit_pads) p.require(v >= 0, "pads", "pads must not be negative");
    pads = explicit_pads;
  }
  for (int a = 0; a < 2; ++a) {
    int64_t keff = (ks[a] - 1) * ds[a] + 1;
    if (explicit_pads.empty() && padding == Padding::same) {
      int64_t out = (ins[a] + ss[a] - 1) / ss[a];
      int64_t total = std::max<int64_t>((out - 1) * ss[a] + keff - ins[a], 0);
      pads[static_cast<size_t>(a)] = total / 2;
      pads[static_cast<size_t>(a) + 2] = total - total / 2;
    }
    int64_t span = ins[a] + pads[static_cast<size_t>(a)] + pads[static_cast<size_t>(a) + 2];
    if (span < keff)
      p.fail("kernel_shape", "the kernel " + size_str(k) + " (dilation " + size_str(d) +
                                 ") does not fit the input " + shape_str({in[2], in[3]}) +
                                 (explicit_pads.empty() && padding == Padding::valid
                                      ? " with valid padding"
                                      : " with pads " + shape_str(pads)));
    (void)ceil_mode;
  }
  return pads;
}

}  // namespace

// ---------------------------------------------------------------- Builder basics

Builder::Builder(std::string model_name) {
  graph_.name = std::move(model_name);
  graph_.framework = "builder";
}

std::string Builder::layer_name(const std::string& requested, const std::string& base) {
  if (!requested.empty()) {
    if (graph_.unique_name(requested) != requested)
      throw Error("the name '" + requested + "' is already used by another layer or tensor", {},
                  requested, "name");
    return requested;
  }
  for (;;) {
    std::string n = base + "_" + std::to_string(++kind_counts_[base]);
    if (graph_.unique_name(n) == n) return n;
  }
}

void Builder::check(const TensorRef& t, const std::string& layer) const {
  if (!t.valid()) throw Error("input is an empty tensor reference", {}, layer, "input");
  if (t.builder_ != this)
    throw Error("input '" + t.name() + "' belongs to another builder", {}, layer, "input");
}

namespace {
Provenance builder_prov(const std::string& name, int index, size_t rank) {
  Provenance p;
  p.framework = "builder";
  p.source_name = name;
  p.output_index = index;
  p.source_layout = rank == 4 ? "NCHW" : "";
  return p;
}
}  // namespace

TensorRef Builder::input(const std::string& name, const Shape& shape, DType dtype) {
  if (name.empty()) throw Error("an input needs a name", {}, {}, "name");
  if (graph_.unique_name(name) != name)
    throw Error("the name '" + name + "' is already used", {}, name, "name");
  shape_numel(shape);
  int v = graph_.add_input(name, dtype, shape);
  graph_.values[static_cast<size_t>(v)].prov = builder_prov(name, 0, shape.size());
  return TensorRef(this, v);
}

TensorRef Builder::constant(const std::string& name, Tensor value) {
  if (!value.defined()) throw Error("constant without a value", {}, name, "value");
  std::string n = layer_name(name, "constant");
  int v = graph_.add_constant(n, std::move(value));
  graph_.values[static_cast<size_t>(v)].prov =
      builder_prov(n, 0, graph_.values[static_cast<size_t>(v)].shape.size());
  return TensorRef(this, v);
}

void Builder::output(const TensorRef& t, const std::string& name) {
  check(t, name);
  Value& v = graph_.values[static_cast<size_t>(t.value())];
  if (!name.empty() && name != v.name) {
    if (v.producer < 0)
      throw Error("only a layer output can be renamed (not an input or constant)", {}, name,
                  "name");
    if (graph_.unique_name(name) != name)
      throw Error("the name '" + name + "' is already used", {}, name, "name");
    v.name = name;
    v.prov.source_name = name;
    v.prov.output_index = 0;
    // Graph caches names by value count: add and drop a value to invalidate that cache.
    graph_.add_value("");
    graph_.values.pop_back();
  }
  if (std::find(graph_.outputs.begin(), graph_.outputs.end(), t.value()) == graph_.outputs.end())
    graph_.outputs.push_back(t.value());
}

int Builder::weight(Pending& p, const std::string& name, const Shape& shape, DType dtype,
                    Weight::Kind kind, int64_t fan_in, int64_t fan_out) {
  int v = graph_.add_constant(p.name + "/" + name, Tensor(dtype, shape));
  graph_.values[static_cast<size_t>(v)].prov = builder_prov(p.name + "/" + name, 0, 0);
  Weight w;
  w.layer = p.name;
  w.name = name;
  w.value = v;
  w.kind = kind;
  w.fan_in = fan_in;
  w.fan_out = fan_out;
  weights_.push_back(w);
  return v;
}

std::vector<TensorRef> Builder::add_layer(Pending& p, const std::string& op,
                                          const std::vector<int>& inputs, Attributes attrs,
                                          int num_outputs) {
  const OpDef* def = OpRegistry::global().find(op);
  if (!def) p.fail("op", "unknown op '" + op + "' (register it with anvil::register_op)");
  int ni = static_cast<int>(inputs.size());
  if (ni < def->min_inputs || (def->max_inputs >= 0 && ni > def->max_inputs))
    p.fail("inputs",
           op + " takes " + std::to_string(def->min_inputs) + ".." +
               (def->max_inputs < 0 ? std::string("any") : std::to_string(def->max_inputs)) +
               " inputs, found " + std::to_string(ni));
  if (num_outputs < def->min_outputs || (def->max_outputs >= 0 && num_outputs > def->max_outputs))
    p.fail("outputs", op + " cannot have " + std::to_string(num_outputs) + " outputs");
  for (const auto& [k, _] : attrs.all()) {
    bool known = std::any_of(def->attrs.begin(), def->attrs.end(),
                             [&](const AttrSpec& a) { return a.name == k; });
    if (!known) p.fail(k, op + " has no attribute '" + k + "'");
  }
  int ni_node = graph_.add_node(op, p.name, inputs, std::move(attrs), num_outputs);
  graph_.nodes[static_cast<size_t>(ni_node)].source_op = p.kind;
  try {
    graph_.infer_node(ni_node);
  } catch (const Error& e) {
    std::string msg = e.message();
    // Shape rules prefix their messages with the op name; say which layer type it is.
    throw Error(p.kind + " (" + op +
                    "): " + (msg.rfind(op + ": ", 0) == 0 ? msg.substr(op.size() + 2) : msg),
                {}, p.name, e.field());
  }
  std::vector<TensorRef> outs;
  const Node& n = graph_.nodes[static_cast<size_t>(ni_node)];
  for (size_t k = 0; k < n.outputs.size(); ++k) {
    Value& v = graph_.values[static_cast<size_t>(n.outputs[k])];
    v.prov = builder_prov(p.name, static_cast<int>(k), v.shape.size());
    outs.push_back(TensorRef(this, n.outputs[k]));
  }
  p.committed = true;
  return outs;
}

// ---------------------------------------------------------------- convolutions and pooling

Layer Builder::conv2d(int64_t filters, Size2 kernel, Conv2dOptions o) {
  return Layer([this, filters, kernel, o](const TensorRef& x) {
    Pending p(*this, o.name, "conv2d", "Conv2D");
    check(x, p.name);
    Shape s = x.shape();
    auto pads = window_pads(p, s, kernel, o.stride, o.dilation, o.padding, o.pads);
    int64_t c = s[1];
    p.require(filters >= 1, "filters", "filters must be positive, got " + std::to_string(filters));
    p.require(o.groups >= 1 && c % o.groups == 0 && filters % o.groups == 0, "group",
              "groups (" + std::to_string(o.groups) + ") must divide the input channels (" +
                  std::to_string(c) + ") and the filters (" + std::to_string(filters) + ")");
    int64_t cg = c / o.groups;
    int64_t area = kernel.h * kernel.w;
    int w = weight(p, "kernel", {filters, cg, kernel.h, kernel.w}, x.dtype(), Weight::kernel,
                   cg * area, filters / o.groups * area);
    std::vector<int> ins{x.value(), w};
    if (o.use_bias) ins.push_back(weight(p, "bias", {filters}, x.dtype(), Weight::bias));
    Attributes a;
    a.set("kernel_shape", std::vector<int64_t>{kernel.h, kernel.w});
    a.set("strides", std::vector<int64_t>{o.stride.h, o.stride.w});
    a.set("dilations", std::vector<int64_t>{o.dilation.h, o.dilation.w});
    a.set("pads", pads);
    a.set("group", o.groups);
    return add_layer(p, "Conv", ins, std::move(a))[0];
  });
}

Layer Builder::depthwise_conv2d(Size2 kernel, DepthwiseConv2dOptions o) {
  return Layer([this, kernel, o](const TensorRef& x) {
    Pending p(*this, o.name, "depthwise_conv2d", "DepthwiseConv2D");
    check(x, p.name);
    Shape s = x.shape();
    auto pads = window_pads(p, s, kernel, o.stride, o.dilation, o.padding, o.pads);
    p.require(o.depth_multiplier >= 1, "depth_multiplier", "depth_multiplier must be positive");
    int64_t c = s[1], m = o.depth_multiplier, area = kernel.h * kernel.w;
    int w = weight(p, "kernel", {c * m, 1, kernel.h, kernel.w}, x.dtype(), Weight::kernel, area,
                   m * area);
    std::vector<int> ins{x.value(), w};
    if (o.use_bias) ins.push_back(weight(p, "bias", {c * m}, x.dtype(), Weight::bias));
    Attributes a;
    a.set("kernel_shape", std::vector<int64_t>{kernel.h, kernel.w});
    a.set("strides", std::vector<int64_t>{o.stride.h, o.stride.w});
    a.set("dilations", std::vector<int64_t>{o.dilation.h, o.dilation.w});
    a.set("pads", pads);
    a.set("group", c);
    return add_layer(p, "Conv", ins, std::move(a))[0];
  });
}

Layer Builder::conv2d_transpose(int64_t filters, Size2 kernel, ConvTranspose2dOptions o) {
  return Layer([this, filters, kernel, o](const TensorRef& x) {
    Pending p(*this, o.name, "conv2d_transpose", "Conv2DTranspose");
    check(x, p.name);
    Shape s = x.shape();
    p.require(s.size() == 4, "input", "expects an NCHW input of rank 4, got shape " + shape_str(s));
    p.require(kernel.h >= 1 && kernel.w >= 1, "kernel_shape", "kernel must be positive");
    p.require(o.stride.h >= 1 && o.stride.w >= 1, "strides", "stride must be positive");
    p.require(o.dilation.h >= 1 && o.dilation.w >= 1, "dilations", "dilation must be positive");
    p.require(filters >= 1, "filters", "filters must be positive");
    p.require(o.groups >= 1 && s[1] % o.groups == 0 && filters % o.groups == 0, "group",
              "groups (" + std::to_string(o.groups) + ") must divide the input channels (" +
                  std::to_string(s[1]) + ") and the filters (" + std::to_string(filters) + ")");
    const int64_t ins_[2] = {s[2], s[3]}, k[2] = {kernel.h, kernel.w},
                  st[2] = {o.stride.h, o.stride.w}, d[2] = {o.dilation.h, o.dilation.w};
    int64_t op[2] = {o.output_padding.h, o.output_padding.w};
    std::vector<int64_t> pads(4, 0);
    if (!o.pads.empty()) {
      p.require(o.pads.size() == 4, "pads", "explicit pads must have 4 values");
      for (int64_t v : o.pads) p.require(v >= 0, "pads", "pads must not be negative");
      pads = o.pads;
    }
    for (int a = 0; a < 2; ++a) {
      int64_t keff = (k[a] - 1) * d[a] + 1;
      if (o.pads.empty() && o.padding == Padding::same) {
        // output = input * stride: crop (keff + output_padding - stride) cells.
        int64_t total = keff + op[a] - st[a];
        if (total < 0) {
          op[a] -= total;
          total = 0;
        }
        pads[static_cast<size_t>(a)] = total / 2;
        pads[static_cast<size_t>(a) + 2] = total - total / 2;
      }
      p.require(op[a] >= 0 && (op[a] < st[a] || op[a] < d[a]), "output_padding",
                "output_padding must be smaller than the stride or the dilation");
      int64_t out = st[a] * (ins_[a] - 1) + op[a] + keff - pads[static_cast<size_t>(a)] -
                    pads[static_cast<size_t>(a) + 2];
      p.require(out >= 1, "pads", "the pads crop the whole output");
    }
    int64_t area = kernel.h * kernel.w;
    int w = weight(p, "kernel", {s[1], filters / o.groups, kernel.h, kernel.w}, x.dtype(),
                   Weight::kernel, s[1] / o.groups * area, filters / o.groups * area);
    std::vector<int> ins{x.value(), w};
    if (o.use_bias) ins.push_back(weight(p, "bias", {filters}, x.dtype(), Weight::bias));
    Attributes a;
    a.set("kernel_shape", std::vector<int64_t>{kernel.h, kernel.w});
    a.set("strides", std::vector<int64_t>{o.stride.h, o.stride.w});
    a.set("dilations", std::vector<int64_t>{o.dilation.h, o.dilation.w});
    a.set("pads", pads);
    a.set("group", o.groups);
    if (op[0] || op[1]) a.set("output_padding", std::vector<int64_t>{op[0], op[1]});
    return add_layer(p, "ConvTranspose", ins, std::move(a))[0];
  });
}

namespace {
Attributes pool_attrs(Size2 kernel, Size2 stride, const std::vector<int64_t>& pads,
                      bool ceil_mode) {
  Attributes a;
  a.set("kernel_shape", std::vector<int64_t>{kernel.h, kernel.w});
  a.set("strides", std::vector<int64_t>{stride.h, stride.w});
  a.set("pads", pads);
  if (ceil_mode) a.set("ceil_mode", int64_t{1});
  return a;
}
}  // namespace

Layer Builder::max_pool(Size2 kernel, Pool2dOptions o) {
  return Layer([this, kernel, o](const TensorRef& x) {
    Pending p(*this, o.name, "max_pool", "MaxPool2D");
    check(x, p.name);
    Size2 stride = o.stride.value_or(kernel);
    auto pads = window_pads(p, x.shape(), kernel, stride, 1, o.padding, o.pads, o.ceil_mode);
    return add_layer(p, "MaxPool", {x.value()}, pool_attrs(kernel, stride, pads, o.ceil_mode))[0];
  });
}

Layer Builder::avg_pool(Size2 kernel, Pool2dOptions o) {
  return Layer([this, kernel, o](const TensorRef& x) {
    Pending p(*this, o.name, "avg_pool", "AvgPool2D");
    check(x, p.name);
    Size2 stride = o.stride.value_or(kernel);
    auto pads = window_pads(p, x.shape(), kernel, stride, 1, o.padding, o.pads, o.ceil_mode);
    Attributes a = pool_attrs(kernel, stride, pads, o.ceil_mode);
    if (o.count_include_pad) a.set("count_include_pad", int64_t{1});
    return add_layer(p, "AveragePool", {x.value()}, std::move(a))[0];
  });
}

Layer Builder::global_avg_pool(const std::string& name) {
  return Layer([this, name](const TensorRef& x) {
    Pending p(*this, name, "global_avg_pool", "GlobalAvgPool2D");
    check(x, p.name);
    p.require(x.shape().size() >= 3, "input",
              "expects an (N, C, spatial...) input, got shape " + shape_str(x.shape()));
    return add_layer(p, "GlobalAveragePool", {x.value()}, {})[0];
  });
}

// ---------------------------------------------------------------- dense, normalization

Layer Builder::dense(int64_t units, DenseOptions o) {
  return Layer([this, units, o](const TensorRef& x) {
    Pending p(*this, o.name, "dense", "Dense");
    check(x, p.name);
    Shape s = x.shape();
    p.require(s.size() == 2, "input",
              "expects a (batch, features) input, got shape " + shape_str(s) +
                  " (add a flatten() first)");
    p.require(units >= 1, "units", "units must be positive, got " + std::to_string(units));
    int w = weight(p, "kernel", {s[1], units}, x.dtype(), Weight::kernel, s[1], units);
    std::vector<int> ins{x.value(), w};
    if (o.use_bias) ins.push_back(weight(p, "bias", {units}, x.dtype(), Weight::bias));
    return add_layer(p, "Gemm", ins, {})[0];
  });
}

Layer Builder::batch_norm(BatchNormOptions o) {
  return Layer([this, o](const TensorRef& x) {
    Pending p(*this, o.name, "batch_norm", "BatchNorm");
    check(x, p.name);
    Shape s = x.shape();
    p.require(s.size() >= 2, "input", "expects an (N, C, ...) input, got shape " + shape_str(s));
    p.require(o.epsilon >= 0, "epsilon", "epsilon must not be negative");
    int64_t c = s[1];
    std::vector<int> ins{x.value()};
    ins.push_back(weight(p, "gamma", {c}, x.dtype(), Weight::gamma));
    ins.push_back(weight(p, "beta", {c}, x.dtype(), Weight::beta));
    ins.push_back(weight(p, "mean", {c}, x.dtype(), Weight::mean));
    ins.push_back(weight(p, "variance", {c}, x.dtype(), Weight::variance));
    Attributes a;
    a.set("epsilon", o.epsilon);
    return add_layer(p, "BatchNormalization", ins, std::move(a))[0];
  });
}

// ---------------------------------------------------------------- activations and shape ops

namespace {
Tensor scalar_of(DType dt, double v) {
  Tensor t(dt, {});
  t.set(0, v);
  return t;
}
}  // namespace

#define ANVIL_SIMPLE_LAYER(method, base, kind, op)  \
  Layer Builder::method(const std::string& name) {  \
    return Layer([this, name](const TensorRef& x) { \
      Pending p(*this, name, base, kind);           \
      check(x, p.name);                             \
      return add_layer(p, op, {x.value()}, {})[0];  \
    });                                             \
  }
ANVIL_SIMPLE_LAYER(relu, "relu", "ReLU", "Relu")
ANVIL_SIMPLE_LAYER(sigmoid, "sigmoid", "Sigmoid", "Sigmoid")
ANVIL_SIMPLE_LAYER(tanh, "tanh", "Tanh", "Tanh")
#undef ANVIL_SIMPLE_LAYER

Layer Builder::clip(double min, double max, const std::string& name) {
  return Layer([this, min, max, name](const TensorRef& x) {
    Pending p(*this, name, "clip", "Clip");
    check(x, p.name);
    p.require(min <= max, "max", "min must not be larger than max");
    int lo = p.constant("min", scalar_of(x.dtype(), min));
    int hi = p.constant("max", scalar_of(x.dtype(), max));
    return add_layer(p, "Clip", {x.value(), lo, hi}, {})[0];
  });
}

Layer Builder::relu6(const std::string& name) {
  return Layer([this, name](const TensorRef& x) {
    Pending p(*this, name, "relu6", "ReLU6");
    check(x, p.name);
    int lo = p.constant("min", scalar_of(x.dtype(), 0.0));
    int hi = p.constant("max", scalar_of(x.dtype(), 6.0));
    return add_layer(p, "Clip", {x.value(), lo, hi}, {})[0];
  });
}

Layer Builder::leaky_relu(double alpha, const std::string& name) {
  return Layer([this, alpha, name](const TensorRef& x) {
    Pending p(*this, name, "leaky_relu", "LeakyReLU");
    check(x, p.name);
    Attributes a;
    a.set("alpha", alpha);
    return add_layer(p, "LeakyRelu", {x.value()}, std::move(a))[0];
  });
}

Layer Builder::elu(double alpha, const std::string& name) {
  return Layer([this, alpha, name](const TensorRef& x) {
    Pending p(*this, name, "elu", "ELU");
    check(x, p.name);
    Attributes a;
    a.set("alpha", alpha);
    return add_layer(p, "Elu", {x.value()}, std::move(a))[0];
  });
}

Layer Builder::hard_sigmoid(double alpha, double beta, const std::string& name) {
  return Layer([this, alpha, beta, name](const TensorRef& x) {
    Pending p(*this, name, "hard_sigmoid", "HardSigmoid");
    check(x, p.name);
    Attributes a;
    a.set("alpha", alpha);
    a.set("beta", beta);
    return add_layer(p, "HardSigmoid", {x.value()}, std::move(a))[0];
  });
}

Layer Builder::softmax(int64_t axis, const std::string& name) {
  return Layer([this, axis, name](const TensorRef& x) {
    Pending p(*this, name, "softmax", "Softmax");
    check(x, p.name);
    int64_t r = static_cast<int64_t>(x.shape().size());
    p.require(
        axis >= -r && axis < r, "axis",
        "axis " + std::to_string(axis) + " is out of range for shape " + shape_str(x.shape()));
    Attributes a;
    a.set("axis", axis);
    return add_layer(p, "Softmax", {x.value()}, std::move(a))[0];
  });
}

Layer Builder::flatten(const std::string& name) {
  return Layer([this, name](const TensorRef& x) {
    Pending p(*this, name, "flatten", "Flatten");
    check(x, p.name);
    p.require(!x.shape().empty(), "input", "cannot flatten a scalar");
    Attributes a;
    a.set("axis", int64_t{1});
    return add_layer(p, "Flatten", {x.value()}, std::move(a))[0];
  });
}

Layer Builder::reshape(const Shape& shape, const std::string& name) {
  return Layer([this, shape, name](const TensorRef& x) {
    Pending p(*this, name, "reshape", "Reshape");
    check(x, p.name);
    int s = p.constant("shape",
                       Tensor::from_vector<int64_t>({static_cast<int64_t>(shape.size())}, shape));
    return add_layer(p, "Reshape", {x.value(), s}, {})[0];
  });
}

Layer Builder::dropout(double rate, const std::string& name) {
  return Layer([this, rate, name](const TensorRef& x) {
    Pending p(*this, name, "dropout", "Dropout");
    check(x, p.name);
    p.require(rate >= 0 && rate < 1, "ratio", "rate must be in [0, 1)");
    return add_layer(p, "Dropout", {x.value()}, {})[0];
  });
}

// ---------------------------------------------------------------- several inputs, custom

TensorRef Builder::add(const std::vector<TensorRef>& inputs, const std::string& name) {
  Pending p(*this, name, "add", "Add");
  p.require(inputs.size() >= 2, "inputs",
            "needs at least two tensors, got " + std::to_string(inputs.size()));
  for (const auto& t : inputs) check(t, p.name);
  // A chain of binary Adds; the last one carries the layer name.
  int acc = inputs[0].value();
  for (size_t i = 1; i < inputs.size(); ++i) {
    bool last = i + 1 == inputs.size();
    if (last) return add_layer(p, "Add", {acc, inputs[i].value()}, {})[0];
    Pending part(*this, p.name + "/add" + std::to_string(i), "", "Add");
    acc = add_layer(part, "Add", {acc, inputs[i].value()}, {})[0].value();
  }
  return {};  // unreachable
}

TensorRef Builder::concat(const std::vector<TensorRef>& inputs, int64_t axis,
                          const std::string& name) {
  Pending p(*this, name, "concat", "Concat");
  p.require(!inputs.empty(), "inputs", "needs at least one tensor");
  std::vector<int> ins;
  for (const auto& t : inputs) {
    check(t, p.name);
    ins.push_back(t.value());
  }
  Attributes a;
  a.set("axis", axis);
  return add_layer(p, "Concat", ins, std::move(a))[0];
}

std::vector<TensorRef> Builder::custom_multi(const std::string& op,
                                             const std::vector<TensorRef>& inputs, int num_outputs,
                                             Attributes attrs, const std::string& name) {
  Pending p(*this, name, lower(op), op);
  std::vector<int> ins;
  for (const auto& t : inputs) {
    if (!t.valid()) {  // an omitted optional input
      ins.push_back(-1);
      continue;
    }
    check(t, p.name);
    ins.push_back(t.value());
  }
  p.require(num_outputs >= 1, "outputs", "needs at least one output");
  return add_layer(p, op, ins, std::move(attrs), num_outputs);
}

TensorRef Builder::custom(const std::string& op, const std::vector<TensorRef>& inputs,
                          Attributes attrs, const std::string& name) {
  return custom_multi(op, inputs, 1, std::move(attrs), name)[0];
}

Layer Builder::custom_layer(const std::string& op, Attributes attrs, const std::string& name) {
  return Layer(
      [this, op, attrs, name](const TensorRef& x) { return custom(op, {x}, attrs, name); });
}

// ---------------------------------------------------------------- weights

void Builder::set_weights(const std::string& layer, const std::map<std::string, Tensor>& weights) {
  bool found = false;
  for (const auto& w : weights_) found |= w.layer == layer;
  if (!found) {
    bool exists = graph_.find_node(layer) >= 0;
    throw Error(exists ? "layer has no weights" : "no layer named '" + layer + "'", {}, layer,
                "weights");
  }
  // Check everything first, then assign (all or nothing).
  std::vector<std::pair<Weight*, Tensor>> todo;
  for (const auto& [name, t] : weights) {
    auto it = std::find_if(weights_.begin(), weights_.end(),
                           [&](const Weight& w) { return w.layer == layer && w.name == name; });
    if (it == weights_.end()) {
      std::string known;
      for (const auto& w : weights_)
        if (w.layer == layer) known += (known.empty() ? "" : ", ") + w.name;
      throw Error("unknown weight '" + name + "' (this layer has: " + known + ")", {}, layer, name);
    }
    const Value& v = graph_.values[static_cast<size_t>(it->value)];
    if (!t.defined()) throw Error("weight tensor is empty", {}, layer, name);
    if (t.shape() != v.shape)
      throw Error("weight '" + name + "' has shape " + shape_str(t.shape()) +
                      ", the layer expects " + shape_str(v.shape),
                  {}, layer, name);
    if (!is_float(t.dtype()))
      throw Error(std::string("weight '") + name + "' has dtype " + dtype_name(t.dtype()) +
                      ", expected a float type",
                  {}, layer, name);
    todo.emplace_back(&*it, t.dtype() == v.dtype ? t.clone() : t.to(v.dtype));
  }
  for (auto& [w, t] : todo) {
    graph_.values[static_cast<size_t>(w->value)].constant = std::move(t);
    w->set = true;
  }
}

std::map<std::string, Shape> Builder::weight_shapes(const std::string& layer) const {
  std::map<std::string, Shape> r;
  for (const auto& w : weights_)
    if (w.layer == layer) r[w.name] = graph_.values[static_cast<size_t>(w.value)].shape;
  if (r.empty() && graph_.find_node(layer) < 0)
    throw Error("no layer named '" + layer + "'", {}, layer, "weights");
  return r;
}

void Builder::initialize_random(uint64_t seed) {
  std::mt19937_64 rng(seed);
  for (auto& w : weights_) {
    if (w.set) continue;
    Value& v = graph_.values[static_cast<size_t>(w.value)];
    Tensor t(v.dtype, v.shape);
    double lo = -0.1, hi = 0.1;
    switch (w.kind) {
      case Weight::kernel: {
        double limit =
            std::sqrt(6.0 / static_cast<double>(std::max<int64_t>(w.fan_in + w.fan_out, 1)));
        lo = -limit;
        hi = limit;
        break;
      }
      case Weight::bias:
        break;
      case Weight::gamma:
      case Weight::variance:
        lo = 0.5;
        hi = 1.5;
        break;
      case Weight::beta:
      case Weight::mean:
        lo = -0.5;
        hi = 0.5;
        break;
    }
    std::uniform_real_distribution<double> dist(lo, hi);
    for (int64_t i = 0; i < t.numel(); ++i) t.set(i, dist(rng));
    v.constant = std::move(t);
    w.set = true;
  }
}

Graph Builder::build() const {
  std::string missing;
  const Weight* first = nullptr;
  for (const auto& w : weights_) {
    if (w.set) continue;
    if (!first) first = &w;
    missing += (missing.empty() ? "" : ", ") + w.layer + "/" + w.name + " " +
               shape_str(graph_.values[static_cast<size_t>(w.value)].shape);
  }
  if (first)
    throw Error("weights never set: " + missing + " (call set_weights() or initialize_random())",
                graph_.name, first->layer, first->name);
  if (graph_.outputs.empty())
    throw Error("the model has no outputs (call output())", graph_.name, {}, "outputs");
  Graph g = graph_;
  g.validate();
  return g;
}

}  // namespace anvil
