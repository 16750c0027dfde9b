// Keras merge layers: Add, Subtract, Multiply, Average, Maximum, Minimum, Concatenate, Dot.
#include "import/keras/keras_translator.h"

namespace anvil::keras {

namespace {

KT merge(Translator& t, const std::vector<KT>& ins, const std::string& op) {
  if (ins.size() < 2 && op != "Average") t.fail("inputs", "a merge layer needs at least 2 inputs");
  if (ins.empty()) t.fail("inputs", "a merge layer needs inputs");
  // Put every input in the first input's canonical layout.
  const KT& f0 = ins[0];
  std::vector<int> vs;
  for (const auto& in : ins) {
    if (t.rank(in.v) != t.rank(f0.v)) t.fail("inputs", "merge inputs have different ranks");
    vs.push_back(f0.perm.empty() ? t.as_source(in) : t.view(in, imp::inverse_perm(f0.perm)));
  }
  int y;
  if (op == "Sub") {
    if (vs.size() != 2) t.fail("inputs", "Subtract needs exactly 2 inputs");
    y = t.node("Sub", vs, {}, true);
  } else if (op == "Max" || op == "Min") {
    y = t.node(op, vs, {}, true);
  } else if (op == "Average") {
    int acc = vs[0];
    for (size_t k = 1; k < vs.size(); ++k) acc = t.node("Add", {acc, vs[k]});
    y = t.node(
        "Mul",
        {acc, t.scalar("inv_count", static_cast<float>(1.0 / static_cast<double>(vs.size())))}, {},
        true);
  } else {
    int acc = vs[0];
    for (size_t k = 1; k < vs.size(); ++k) acc = t.node(op, {acc, vs[k]}, {}, k + 1 == vs.size());
    y = acc;
  }
  return KT{y, f0.perm};
}

template <const char* OP>
std::vector<KT> merge_layer(Translator& t, const std::vector<KT>& ins) {
  return {merge(t, ins, OP)};
}

constexpr char kAdd[] = "Add", kSub[] = "Sub", kMul[] = "Mul", kAverage[] = "Average",
               kMax[] = "Max", kMin[] = "Min";

std::vector<KT> concatenate_layer(Translator& t, const std::vector<KT>& ins) {
  if (ins.empty()) t.fail("inputs", "no inputs");
  int64_t ax = t.i("axis", -1);
  const KT& f0 = ins[0];
  std::vector<int> vs;
  for (const auto& in : ins) {
    if (t.rank(in.v) != t.rank(f0.v)) t.fail("inputs", "Concatenate inputs have different ranks");
    vs.push_back(f0.perm.empty() ? t.as_source(in) : t.view(in, imp::inverse_perm(f0.perm)));
  }
  Attributes a;
  a.set("axis", static_cast<int64_t>(t.canon_axis(f0, ax)));
  return {KT{t.node("Concat", vs, a, true), f0.perm}};
}

std::vector<KT> dot_layer(Translator& t, const std::vector<KT>& ins) {
  if (ins.size() != 2) t.fail("inputs", "Dot takes 2 inputs");
  int a0 = t.as_source(ins[0]), a1 = t.as_source(ins[1]);
  int r0 = t.rank(a0), r1 = t.rank(a1);
  std::vector<int64_t> axes;
  const json& j = t.C().value("axes", json(-1));
  if (j.is_number_integer())
    axes = {j.get<int64_t>(), j.get<int64_t>()};
  else if (j.is_array() && j.size() == 2 && j[0].is_number_integer() && j[1].is_number_integer())
    axes = {j[0].get<int64_t>(), j[1].get<int64_t>()};
  else
    t.fail("axes", "bad axes " + j.dump());
  if (axes[0] < 0) axes[0] += r0;
  if (axes[1] < 0) axes[1] += r1;
  if (r0 < 2 || r0 > 3 || r1 != r0 || axes[0] < 1 || axes[1] < 1 || axes[0] >= r0 || axes[1] >= r1)
    t.fail("axes", "Dot supports rank-2 or rank-3 inputs with non-batch axes");
  if (t.shape(a0)[static_cast<size_t>(axes[0])] != t.shape(a1)[static_cast<size_t>(axes[1])])
    t.fail("axes", "Dot axes have different sizes");
  if (t.b("normalize", false)) {
    auto l2n = [&](int v, int64_t ax) {
      int sq = t.node("Mul", {v, v});
      Attributes ra;
      ra.set("keepdims", int64_t{1});
      int ss = t.node("ReduceSum", {sq, t.i64s("axes", {ax})}, ra);
      ss = t.node("Max", {ss, t.scalar("eps", 1e-12f)});
      ss = t.node("Sqrt", {ss});
      return t.node("Div", {v, ss});
    };
    a0 = l2n(a0, axes[0]);
    a1 = l2n(a1, axes[1]);
  }
  if (r0 == 2) {
    int m = t.node("Mul", {a0, a1});
    Attributes ra;
    ra.set("keepdims", int64_t{1});
    return {KT{t.node("ReduceSum", {m, t.i64s("axes", {1})}, ra, true), {}}};
  }
  // rank 3: (N, a, b) . (N, c, d) -> contract x axis ax0 with y axis ax1
  Attributes p0, p1;
  int x2 = a0, y2 = a1;
  if (axes[0] == 1) {
    p0.set("perm", std::vector<int64_t>{0, 2, 1});
    x2 = t.node("Transpose", {a0}, p0);
  }
  if (axes[1] == 2) {
    p1.set("perm", std::vector<int64_t>{0, 2, 1});
    y2 = t.node("Transpose", {a1}, p1);
  }
  return {KT{t.node("MatMul", {x2, y2}, {}, true), {}}};
}

const ConverterRegistrar merge_layers({
    {"Add", merge_layer<kAdd>},
    {"Subtract", merge_layer<kSub>},
    {"Multiply", merge_layer<kMul>},
    {"Average", merge_layer<kAverage>},
    {"Maximum", merge_layer<kMax>},
    {"Minimum", merge_layer<kMin>},
    {"Concatenate", concatenate_layer},
    {"Dot", dot_layer},
});

}  // namespace

}  // namespace anvil::keras
