// Keras wrapper layers: TimeDistributed(layer) (time folded into the batch: (N, T, ...) ->
// (N*T, ...), the wrapped layer, then back to (N, T, ...)) and Bidirectional(recurrent layer)
// (one bidirectional node, layers_recurrent.cpp). The wrapped layer's config is the wrapper's
// "layer" entry; its weights are the wrapper's.
#include "import/keras/keras_translator.h"

namespace anvil::keras {

namespace {

LayerDef inner_layer(Translator& t) {
  if (!t.C().contains("layer") || !t.C()["layer"].is_object())
    t.fail("layer", "the wrapper has no wrapped layer config");
  const json& lj = t.C()["layer"];
  LayerDef d;
  d.cls = jstr(lj, "class_name");
  d.config = cfg_of(lj);
  if (!d.config.is_object()) t.fail("layer", "the wrapped layer's config is not an object");
  d.name = jstr(d.config, "name", t.layer_name());
  return d;
}

std::vector<KT> time_distributed_layer(Translator& t, const std::vector<KT>& ins) {
  const KT& x = t.one(ins);
  LayerDef inner = inner_layer(t);
  if (inner.cls == "Sequential" || inner.cls == "Model" || inner.cls == "Functional")
    return t.unsupported_layer(ins, "TimeDistributed over a nested model is not supported");
  int xv = t.as_source(x);
  Shape xs = t.shape(xv);
  if (xs.size() < 3) t.fail("input", "TimeDistributed needs a (batch, time, ...) input");
  Shape folded{xs[0] * xs[1]};
  folded.insert(folded.end(), xs.begin() + 2, xs.end());
  int fv = t.node("Reshape", {xv, t.i64s("fold_time", folded)});
  std::vector<KT> outs = t.call_inner(inner, {KT{fv, {}}}, t.layer_weights());
  if (outs.size() != 1) t.fail("layer", "TimeDistributed over a layer with several outputs");
  if (outs[0].poisoned) return outs;
  int yv = t.as_source(outs[0]);
  Shape ys = t.shape(yv);
  if (ys.empty() || ys[0] != xs[0] * xs[1])
    t.fail("layer", "the wrapped layer changed the batch size");
  Shape unfolded{xs[0], xs[1]};
  unfolded.insert(unfolded.end(), ys.begin() + 1, ys.end());
  return {KT{t.node("Reshape", {yv, t.i64s("unfold_time", unfolded)}, {}, true), {}}};
}

std::vector<KT> bidirectional_layer(Translator& t, const std::vector<KT>& ins) {
  if (ins.empty()) t.fail("inputs", "Bidirectional needs an input");
  LayerDef inner = inner_layer(t);
  LayerConverter convert = bidirectional_converter(inner.cls);
  if (!convert)
    return t.unsupported_layer(ins, "Bidirectional over " + inner.cls + " is not supported");
  // merge_mode: "concat" (default), "sum", "mul", "ave", or null (two outputs)
  std::string merge = "concat";
  if (t.C().contains("merge_mode"))
    merge = t.C()["merge_mode"].is_null() ? "None" : t.s("merge_mode", "concat");
  inner.config["merge_mode"] = merge;
  return t.call_inner(inner, ins, t.layer_weights(), convert);
}

const ConverterRegistrar wrapper_layers({
    {"TimeDistributed", time_distributed_layer},
    {"Bidirectional", bidirectional_layer},
});

}  // namespace

}  // namespace anvil::keras
