// ONNX converters for the recurrent ops RNN, LSTM, GRU (canonical ops of the same names,
// src/ops/recurrent.cpp; attributes copied). Before opset 7 they had an `output_sequence`
// attribute that only said whether Y is wanted; the canonical op always computes Y when the
// node has that output, so the attribute is dropped.
#include "import/onnx/onnx_builder.h"

namespace anvil::onnx_import {

namespace {

Next recurrent(OnnxGraphBuilder&, NodeCtx& c) {
  c.attrs.erase("output_sequence");
  return Next::emit;
}

const ConverterRegistrar seq_converters({
    {"RNN", recurrent},
    {"LSTM", recurrent},
    {"GRU", recurrent},
});

}  // namespace

}  // namespace anvil::onnx_import
