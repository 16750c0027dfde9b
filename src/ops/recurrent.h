// The recurrent ops RNN, LSTM and GRU (ONNX semantics, opset 14, plus Anvil's `step_mask`
// input): the parsed attributes and input shapes, shared by the reference kernels
// (src/ops/recurrent.cpp) and the backends' handlers (cpu: src/backend/cpu/rnn_handler.cpp).
// parse_rnn_attrs checks a node once and throws the errors the reference kernels give
// ("<Op>: message", field), so every backend refuses a node with the same message.
//
// Inputs (ONNX order): X, W, R, B, sequence_lens, initial_h, [LSTM: initial_c, P], step_mask.
// step_mask (Anvil extension, index 6 for RNN/GRU, 8 for LSTM; Keras `Masking`): shape
// [seq_length, batch] (layout 0) or [batch, seq_length] (layout 1), any numeric or bool dtype,
// nonzero = the step is used. At a masked step the state (h, and c for LSTM) carries over
// unchanged and Y at that step is the carried-over h (Keras 2 semantics).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "anvil/graph.h"
#include "anvil/tensor.h"

namespace anvil {

enum class RnnKind { Rnn, Lstm, Gru };

/// One activation function of a recurrent op (the ONNX names, matched case-insensitively).
struct RnnActivation {
  enum Kind {
    Relu,
    Tanh,
    Sigmoid,
    Affine,
    LeakyRelu,
    ThresholdedRelu,
    ScaledTanh,
    HardSigmoid,
    Elu,
    Softsign,
    Softplus
  };
  Kind kind = Tanh;
  double alpha = 0, beta = 0;
  std::string name;  // canonical spelling ("Sigmoid", ...)
  double operator()(double x) const;
};

struct RnnAttrs {
  RnnKind kind = RnnKind::Lstm;
  std::string op;  // "RNN", "LSTM", "GRU"
  int gates = 4;   // RNN 1, LSTM 4 (i, o, f, c), GRU 3 (z, r, h)
  int nact = 3;    // activations per direction: RNN 1 (f), LSTM 3 (f, g, h), GRU 2 (f, g)
  int64_t seq = 0, batch = 0, input = 0, hidden = 0;
  int dirs = 1;
  std::string direction = "forward";  // forward, reverse, bidirectional
  int64_t layout = 0;                 // 0: [seq, batch, ...]; 1: [batch, seq, ...]
  bool has_clip = false;
  double clip = 0;
  bool input_forget = false;         // LSTM
  bool linear_before_reset = false;  // GRU
  std::vector<RnnActivation> acts;   // dirs * nact, direction d's at d * nact
  // Which optional inputs are given.
  bool has_b = false, has_seq_lens = false, has_init_h = false, has_init_c = false;
  bool has_p = false, has_mask = false;
  Shape y_shape;      // Y
  Shape state_shape;  // Y_h, Y_c (and initial_h, initial_c)

  /// True when direction `d` (0 or 1) runs from the last step to the first.
  bool reverse(int d) const { return direction == "reverse" || (dirs == 2 && d == 1); }
  const RnnActivation& act(int d, int i) const { return acts[static_cast<size_t>(d * nact + i)]; }
};

/// Input indices.
constexpr int kRnnSeqLens = 4, kRnnInitH = 5, kLstmInitC = 6, kLstmP = 7;
/// The index of the step_mask input: 8 for LSTM, 6 for RNN and GRU.
inline int rnn_mask_index(RnnKind k) { return k == RnnKind::Lstm ? 8 : 6; }
/// The op name of a kind and the kind of an op name ("RNN", "LSTM", "GRU").
const char* rnn_op_name(RnnKind k);
bool rnn_kind_of(const std::string& op, RnnKind& k);

/// Parses the attributes against the inputs' shapes and dtypes. `shapes[i]` is input i's
/// shape or nullptr when omitted (dtypes likewise, ignored where the shape is null).
/// Throws anvil::Error("<Op>: message", field).
RnnAttrs parse_rnn_attrs(RnnKind kind, const Attributes& a, const std::vector<const Shape*>& shapes,
                         const std::vector<DType>& dtypes);

/// The same, read from a node of `g` (input shapes from the graph's values, which must be
/// known); errors name the graph's file and the node.
RnnAttrs rnn_attrs(const Graph& g, const Node& n);

}  // namespace anvil
