// Keras sequence-input layers: Embedding (a Gather of the table; mask_zero gives the output a
// mask) and Masking (zeroes the masked steps and gives the output a mask); see keras_masks.cpp
// for how masks travel to the recurrent layers.
#include "import/keras/keras_translator.h"

namespace anvil::keras {

namespace {

std::vector<KT> embedding_layer(Translator& t, const std::vector<KT>& ins) {
  const KT& x = t.one(ins);
  int64_t input_dim = t.i("input_dim", -1), output_dim = t.i("output_dim", -1);
  if (input_dim < 1 || input_dim > kMaxTensorElements) t.fail("input_dim", "bad input_dim");
  if (output_dim < 1 || output_dim > kMaxTensorElements) t.fail("output_dim", "bad output_dim");
  Tensor table = t.weight("embeddings", 0, {input_dim, output_dim});
  t.expect_weight_count(1);
  int ids = t.as_source(x);
  // Keras casts the ids to int32 (a float input is truncated toward zero)
  if (!is_integer(t.dtype(ids))) ids = t.cast(ids, DType::i32);
  Attributes a;
  a.set("axis", int64_t{0});
  int y = t.node("Gather", {t.cst("embeddings", table), ids}, a, true);
  if (t.b("mask_zero", false) && t.rank(ids) == 2) {
    Tensor zero(t.dtype(ids), Shape{});
    zero.set(0, 0.0);
    int eq = t.node("Equal", {ids, t.cst("zero", zero)});
    t.set_out_mask(0, t.cast(t.node("Not", {eq}), DType::f32));
  }
  return {KT{y, {}}};
}

std::vector<KT> masking_layer(Translator& t, const std::vector<KT>& ins) {
  const KT& x = t.one(ins);
  int xv = t.as_source(x);
  Shape xs = t.shape(xv);
  if (xs.size() < 3) t.fail("input", "Masking needs a (batch, time, ...) input");
  // Keras: keep = any(x != mask_value, axis=-1, keepdims=True); y = x * keep
  float mv = static_cast<float>(t.f("mask_value", 0.0));
  int eq = t.node("Equal", {xv, t.scalar("mask_value", mv)});
  int ne = t.cast(t.node("Not", {eq}), DType::f32);
  Attributes a;
  a.set("keepdims", int64_t{1});
  int keep = t.node("ReduceMax", {ne, t.i64s("axes", {static_cast<int64_t>(xs.size()) - 1})}, a);
  int y = t.node("Mul", {xv, keep}, {}, true);
  if (xs.size() == 3)  // the (N, T) step mask recurrent layers read
    t.set_out_mask(0, t.node("Reshape", {keep, t.i64s("shape", {xs[0], xs[1]})}));
  return {KT{y, {}}};
}

const ConverterRegistrar sequence_layers({
    {"Embedding", embedding_layer},
    {"Masking", masking_layer},
});

}  // namespace

}  // namespace anvil::keras
