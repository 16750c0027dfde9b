// Keras activation layers (Activation, ReLU, LeakyReLU, ELU, ThresholdedReLU, Softmax, PReLU)
// and the `activation` field vocabulary shared with conv and dense layers.
#include "import/keras/keras_translator.h"

namespace anvil::keras {

int relu_general(Translator& t, int x, double max_value, bool has_max, double slope,
                 double threshold, bool final_node) {
  // Keras backend relu(x, alpha, max_value, threshold):
  //   y = clip(threshold != 0 ? x * (x > threshold) : relu(x), 0, max_value) - alpha *
  //   relu(threshold - x)
  bool neg = slope != 0;
  int y;
  if (!neg && threshold == 0 && has_max) {
    return t.node("Clip", {x, t.scalar("min", 0.f), t.scalar("max", static_cast<float>(max_value))},
                  {}, final_node);
  }
  if (threshold != 0) {
    Attributes a;
    a.set("alpha", threshold);
    y = t.node("ThresholdedRelu", {x}, a, final_node && !has_max && !neg);
  } else if (neg && !has_max) {
    Attributes a;
    a.set("alpha", slope);
    return t.node("LeakyRelu", {x}, a, final_node);
  } else {
    y = t.node("Relu", {x}, {}, final_node && !has_max && !neg);
  }
  if (has_max)
    y = t.node("Clip", {y, t.scalar("min", 0.f), t.scalar("max", static_cast<float>(max_value))},
               {}, final_node && !neg);
  if (neg) {
    int u = t.node("Sub", {t.scalar("threshold", static_cast<float>(threshold)), x});
    u = t.node("Relu", {u});
    u = t.node("Mul", {u, t.scalar("negative_slope", static_cast<float>(slope))});
    y = t.node("Sub", {y, u}, {}, final_node);
  }
  return y;
}

int apply_activation(Translator& t, const KT& x, const std::string& act_in, bool final_node) {
  std::string act = act_in;
  if (act.empty() || act == "linear" || act == "None") {
    return final_node ? t.node("Identity", {x.v}, {}, true) : x.v;
  }
  Attributes a;
  if (act == "relu") return t.node("Relu", {x.v}, {}, final_node);
  if (act == "relu6") return relu_general(t, x.v, 6, true, 0, 0, final_node);
  if (act == "sigmoid") return t.node("Sigmoid", {x.v}, {}, final_node);
  if (act == "tanh") return t.node("Tanh", {x.v}, {}, final_node);
  if (act == "hard_sigmoid") {
    // Keras 2 / tf.keras: clip(0.2x + 0.5); Keras 3: relu6(x + 3) / 6
    a.set("alpha", t.keras3() ? 1.0 / 6.0 : 0.2);
    a.set("beta", 0.5);
    return t.node("HardSigmoid", {x.v}, a, final_node);
  }
  if (act == "softmax" || act == "log_softmax") {
    a.set("axis", static_cast<int64_t>(t.canon_axis(x, -1)));
    return t.node(act == "softmax" ? "Softmax" : "LogSoftmax", {x.v}, a, final_node);
  }
  if (act == "elu") {
    a.set("alpha", 1.0);
    return t.node("Elu", {x.v}, a, final_node);
  }
  if (act == "selu") {
    a.set("alpha", 1.6732632423543772848170429916717);
    a.set("gamma", 1.0507009873554804934193349852946);
    return t.node("Selu", {x.v}, a, final_node);
  }
  if (act == "softplus") return t.node("Softplus", {x.v}, {}, final_node);
  if (act == "softsign") return t.node("Softsign", {x.v}, {}, final_node);
  if (act == "exponential") return t.node("Exp", {x.v}, {}, final_node);
  if (act == "swish" || act == "silu") {
    int sg = t.node("Sigmoid", {x.v});
    return t.node("Mul", {x.v, sg}, {}, final_node);
  }
  if (act == "gelu") {
    a.set("approximate", std::string("none"));
    return t.node("Gelu", {x.v}, a, final_node);
  }
  if (act == "mish") return t.node("Mish", {x.v}, {}, final_node);
  if (act == "hard_silu" || act == "hard_swish") return t.node("HardSwish", {x.v}, {}, final_node);
  if (act == "leaky_relu") {
    a.set("alpha", 0.2);
    return t.node("LeakyRelu", {x.v}, a, final_node);
  }
  t.fail("activation", "unsupported activation '" + act + "'");
}

namespace {

std::vector<KT> activation_layer(Translator& t, const std::vector<KT>& ins) {
  const KT& x = t.one(ins);
  std::string act = t.s("activation", "linear");
  return {KT{apply_activation(t, x, act, true), x.perm}};
}

std::vector<KT> relu_layer(Translator& t, const std::vector<KT>& ins) {
  const KT& x = t.one(ins);
  bool has_max = t.has("max_value");
  double mv = t.f("max_value", 0);
  double slope = t.f("negative_slope", 0), thr = t.f("threshold", 0);
  if (!has_max && slope == 0 && thr == 0) return {KT{t.node("Relu", {x.v}, {}, true), x.perm}};
  return {KT{relu_general(t, x.v, mv, has_max, slope, thr, true), x.perm}};
}

std::vector<KT> leaky_relu_layer(Translator& t, const std::vector<KT>& ins) {
  const KT& x = t.one(ins);
  Attributes a;
  a.set("alpha", t.f("alpha", t.f("negative_slope", 0.3)));
  return {KT{t.node("LeakyRelu", {x.v}, a, true), x.perm}};
}

std::vector<KT> elu_layer(Translator& t, const std::vector<KT>& ins) {
  const KT& x = t.one(ins);
  Attributes a;
  a.set("alpha", t.f("alpha", 1.0));
  return {KT{t.node("Elu", {x.v}, a, true), x.perm}};
}

std::vector<KT> thresholded_relu_layer(Translator& t, const std::vector<KT>& ins) {
  const KT& x = t.one(ins);
  Attributes a;
  a.set("alpha", t.f("theta", 1.0));
  return {KT{t.node("ThresholdedRelu", {x.v}, a, true), x.perm}};
}

std::vector<KT> softmax_layer(Translator& t, const std::vector<KT>& ins) {
  const KT& x = t.one(ins);
  int64_t ax = -1;
  if (t.has("axis")) {
    if (t.C()["axis"].is_array()) {
      if (t.C()["axis"].size() != 1 || !t.C()["axis"][0].is_number_integer())
        t.fail("axis", "Softmax over several axes is not supported");
      ax = t.C()["axis"][0].get<int64_t>();
    } else {
      ax = t.i("axis", -1);
    }
  }
  Attributes a;
  a.set("axis", static_cast<int64_t>(t.canon_axis(x, ax)));
  return {KT{t.node("Softmax", {x.v}, a, true), x.perm}};
}

std::vector<KT> prelu_layer(Translator& t, const std::vector<KT>& ins) {
  const KT& x = t.one(ins);
  Shape ss = t.src_shape(x);
  Shape ash(ss.begin() + 1, ss.end());
  if (t.has("shared_axes") && !t.C()["shared_axes"].is_null()) {
    const json& j = t.C()["shared_axes"];
    std::vector<int64_t> axes;
    if (j.is_number_integer())
      axes.push_back(j.get<int64_t>());
    else if (j.is_array())
      for (const auto& e : j) {
        if (!e.is_number_integer()) t.fail("shared_axes", "expected integers");
        axes.push_back(e.get<int64_t>());
      }
    for (int64_t a : axes) {
      if (a < 1 || a >= static_cast<int64_t>(ss.size())) t.fail("shared_axes", "axis out of range");
      ash[static_cast<size_t>(a - 1)] = 1;
    }
  }
  Tensor alpha = t.weight("alpha", 0, ash);
  t.expect_weight_count(1);
  Shape full{1};
  full.insert(full.end(), ash.begin(), ash.end());
  Tensor ac = t.const_to_canon(x, alpha.reshaped(full));
  return {KT{t.node("PRelu", {x.v, t.cst("alpha", ac)}, {}, true), x.perm}};
}

const ConverterRegistrar activation_layers({
    {"Activation", activation_layer},
    {"ReLU", relu_layer},
    {"LeakyReLU", leaky_relu_layer},
    {"ELU", elu_layer},
    {"ThresholdedReLU", thresholded_relu_layer},
    {"Softmax", softmax_layer},
    {"PReLU", prelu_layer},
});

}  // namespace

}  // namespace anvil::keras
