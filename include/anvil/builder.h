// A small DSL that builds an anvil::Graph layer by layer, with shapes inferred as you go
// (in the spirit of Forge's `input --> Convolution(...) --> Dense(...)`):
//
//   anvil::Builder b("lenet");
//   auto x = b.input("image", {1, 1, 28, 28});
//   auto y = x >> b.conv2d(8, {3, 3}, {.padding = anvil::Padding::same, .name = "conv1"})
//              >> b.relu() >> b.max_pool({2, 2}) >> b.flatten() >> b.dense(10) >> b.softmax();
//   b.output(y, "probs");
//   b.set_weights("conv1", {{"kernel", w}, {"bias", bias}});   // or b.initialize_random(seed)
//   anvil::Graph g = b.build();
//
// Conventions (one set for every layer, no per-layer surprises):
// - activations are NCHW; the graph's provenance is framework "builder", layout NCHW;
// - padding defaults to `valid` for every layer; `same` is TensorFlow's rule (output =
//   ceil(in / stride), the odd padding cell goes at the end) and is turned into explicit pads
//   right away; `pads` ([top, left, bottom, right]) overrides both;
// - a layer's shape is known as soon as it is applied (`y.shape()`); a layer that does not
//   fit its input throws anvil::Error naming the layer, at the line that applies it;
// - weights are in the canonical layouts (listed per layer below), attached by layer name
//   with set_weights() (checked shapes); any weight left unset makes build() throw unless
//   initialize_random() filled it.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "anvil/graph.h"
#include "anvil/tensor.h"

namespace anvil {

class Builder;

enum class Padding { valid, same };

/// A 2-D size (height, width); `3` means {3, 3}.
struct Size2 {
  int64_t h = 1, w = 1;
  Size2() = default;
  Size2(int64_t v) : h(v), w(v) {}  // NOLINT: implicit on purpose (`.stride = 2`)
  Size2(int64_t h_, int64_t w_) : h(h_), w(w_) {}
};

/// A tensor being built: a handle to a value of the builder's graph.
class TensorRef {
 public:
  TensorRef() = default;
  bool valid() const { return builder_ != nullptr && value_ >= 0; }
  Shape shape() const;
  DType dtype() const;
  std::string name() const;             // the canonical value name
  int value() const { return value_; }  // index into the graph's values
  Builder* builder() const { return builder_; }

 private:
  friend class Builder;
  TensorRef(Builder* b, int v) : builder_(b), value_(v) {}
  Builder* builder_ = nullptr;
  int value_ = -1;
};

/// A layer waiting for its input: `x >> layer` (or `layer(x)`) adds it to the graph.
class Layer {
 public:
  using Apply = std::function<TensorRef(const TensorRef&)>;
  explicit Layer(Apply f) : apply_(std::move(f)) {}
  TensorRef operator()(const TensorRef& x) const { return apply_(x); }

 private:
  Apply apply_;
};

inline TensorRef operator>>(const TensorRef& x, const Layer& layer) { return layer(x); }
/// Element-wise sum (an Add layer with an automatic name).
TensorRef operator+(const TensorRef& a, const TensorRef& b);

struct Conv2dOptions {
  Padding padding = Padding::valid;
  Size2 stride = 1;
  Size2 dilation = 1;
  int64_t groups = 1;
  bool use_bias = true;
  std::vector<int64_t> pads = {};  // explicit [top, left, bottom, right]; overrides `padding`
  std::string name = {};
};

struct DepthwiseConv2dOptions {
  Padding padding = Padding::valid;
  Size2 stride = 1;
  Size2 dilation = 1;
  int64_t depth_multiplier = 1;
  bool use_bias = true;
  std::vector<int64_t> pads = {};
  std::string name = {};
};

struct ConvTranspose2dOptions {
  Padding padding = Padding::valid;  // same: output = input * stride
  Size2 stride = 1;
  Size2 dilation = 1;
  int64_t groups = 1;
  bool use_bias = true;
  Size2 output_padding = 0;        // extra rows/columns at the end (valid padding only)
  std::vector<int64_t> pads = {};  // cropped from the full output: [top, left, bottom, right]
  std::string name = {};
};

struct Pool2dOptions {
  Padding padding = Padding::valid;
  std::optional<Size2> stride = {};  // default: the kernel size
  bool ceil_mode = false;
  bool count_include_pad = false;  // average pooling: do padded cells count in the divisor
  std::vector<int64_t> pads = {};
  std::string name = {};
};

struct DenseOptions {
  bool use_bias = true;
  std::string name = {};
};

struct BatchNormOptions {
  double epsilon = 1e-5;
  std::string name = {};
};

/// Builds a Graph. Not copyable or movable: TensorRefs point at it.
class Builder {
 public:
  explicit Builder(std::string model_name);
  Builder(const Builder&) = delete;
  Builder& operator=(const Builder&) = delete;

  // ---- graph inputs, constants, outputs
  TensorRef input(const std::string& name, const Shape& shape, DType dtype = DType::f32);
  /// A named constant (not a weight: it is never "unset").
  TensorRef constant(const std::string& name, Tensor value);
  /// Marks `t` as a graph output; a non-empty `name` renames it (its value and source name).
  void output(const TensorRef& t, const std::string& name = {});

  // ---- layers applied with `x >> layer`. Weights (canonical layouts):
  /// Conv: "kernel" (filters, in_channels / groups, kh, kw), "bias" (filters).
  Layer conv2d(int64_t filters, Size2 kernel, Conv2dOptions options = {});
  /// Conv with group = channels: "kernel" (channels * multiplier, 1, kh, kw), "bias".
  Layer depthwise_conv2d(Size2 kernel, DepthwiseConv2dOptions options = {});
  /// ConvTranspose: "kernel" (in_channels, filters / groups, kh, kw), "bias" (filters).
  Layer conv2d_transpose(int64_t filters, Size2 kernel, ConvTranspose2dOptions options = {});
  Layer max_pool(Size2 kernel, Pool2dOptions options = {});
  Layer avg_pool(Size2 kernel, Pool2dOptions options = {});
  /// (N, C, H, W) -> (N, C, 1, 1).
  Layer global_avg_pool(const std::string& name = {});
  /// Gemm on (N, in): "kernel" (in, units), "bias" (units).
  Layer dense(int64_t units, DenseOptions options = {});
  /// BatchNormalization over axis 1: "gamma", "beta", "mean", "variance" (channels each).
  Layer batch_norm(BatchNormOptions options = {});
  Layer relu(const std::string& name = {});
  Layer relu6(const std::string& name = {});  // Clip(0, 6)
  Layer clip(double min, double max, const std::string& name = {});
  Layer leaky_relu(double alpha = 0.01, const std::string& name = {});
  Layer elu(double alpha = 1.0, const std::string& name = {});
  Layer sigmoid(const std::string& name = {});
  Layer hard_sigmoid(double alpha = 0.2, double beta = 0.5, const std::string& name = {});
  Layer tanh(const std::string& name = {});
  /// Softmax along `axis` (default 1: the channels / classes of NCHW or (N, classes)).
  Layer softmax(int64_t axis = 1, const std::string& name = {});
  /// (N, d1, d2, ...) -> (N, d1 * d2 * ...).
  Layer flatten(const std::string& name = {});
  /// ONNX Reshape: the full target shape including the batch; 0 copies a dim, -1 infers one.
  Layer reshape(const Shape& shape, const std::string& name = {});
  /// Identity at inference (kept in the graph for provenance; passes remove it).
  Layer dropout(double rate, const std::string& name = {});

  // ---- layers with several inputs
  /// Element-wise sum of two or more tensors of the same shape (broadcasting as ONNX Add).
  TensorRef add(const std::vector<TensorRef>& inputs, const std::string& name = {});
  /// Concatenation along `axis` (default 1: channels).
  TensorRef concat(const std::vector<TensorRef>& inputs, int64_t axis = 1,
                   const std::string& name = {});

  // ---- any registered op (custom ops included), shape from its shape rule
  TensorRef custom(const std::string& op, const std::vector<TensorRef>& inputs,
                   Attributes attrs = {}, const std::string& name = {});
  std::vector<TensorRef> custom_multi(const std::string& op, const std::vector<TensorRef>& inputs,
                                      int num_outputs, Attributes attrs = {},
                                      const std::string& name = {});
  /// A single-input custom op usable with `x >> b.custom_layer("Mish")`.
  Layer custom_layer(const std::string& op, Attributes attrs = {}, const std::string& name = {});

  // ---- weights
  /// Sets weights of layer `layer` by weight name; throws (naming layer and weight) on an
  /// unknown layer or weight name or a wrong shape. Float tensors are converted to the
  /// layer's dtype.
  void set_weights(const std::string& layer, const std::map<std::string, Tensor>& weights);
  /// The weights a layer expects: name -> shape.
  std::map<std::string, Shape> weight_shapes(const std::string& layer) const;
  /// Fills every weight not set so far with deterministic pseudo-random values (Glorot
  /// uniform kernels, small biases, BN gamma/variance in [0.5, 1.5], beta/mean in
  /// [-0.5, 0.5]). Layers added later are not affected.
  void initialize_random(uint64_t seed);

  /// The graph built so far (shapes inferred; weights may be unset).
  const Graph& graph() const { return graph_; }
  /// The finished graph; throws listing the weights never set.
  Graph build() const;

 private:
  friend class TensorRef;
  struct Weight {
    std::string layer, name;
    int value;
    bool set = false;
    int64_t fan_in = 1, fan_out = 1;  // for initialization
    enum Kind { kernel, bias, gamma, beta, mean, variance } kind = kernel;
  };
  struct Pending;  // a layer being added (rolled back if it fails)

  std::string layer_name(const std::string& requested, const std::string& kind);
  int weight(Pending& p, const std::string& name, const Shape& shape, DType dtype,
             Weight::Kind kind, int64_t fan_in = 1, int64_t fan_out = 1);
  std::vector<TensorRef> add_layer(Pending& p, const std::string& op,
                                   const std::vector<int>& inputs, Attributes attrs,
                                   int num_outputs = 1);
  void check(const TensorRef& t, const std::string& layer) const;

  Graph graph_;
  std::vector<Weight> weights_;
  std::map<std::string, int> kind_counts_;
};

}  // namespace anvil
