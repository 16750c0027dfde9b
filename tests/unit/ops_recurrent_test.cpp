// Tests of the recurrent ops RNN, LSTM, GRU (src/ops/recurrent*.cpp): values against PyTorch,
// and one test per semantic rule (gate orders, sequence_lens, step_mask, directions, layout,
// peepholes, input_forget, clip, activations) and per error.
// Inputs use the deterministic pattern of ref_nn_test_util.h: pat(shape, mul, mod, sub, div)[i]
// = ((i*mul) % mod - sub) / div. PyTorch values: torch 1.13 (Debian's /usr/bin/python3), float64,
// weights reordered from ONNX's gate order (LSTM i,o,f,c -> torch i,f,g,o; GRU z,r,h ->
// torch r,z,n); the script is tests/data/pytorch-seq/unit_values.py.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "anvil/error.h"
#include "anvil/graph.h"
#include "anvil/ops.h"
#include "anvil/tensor.h"
#include "ref_nn_test_util.h"

using namespace anvil;
using namespace anvil::ref_nn_test;

namespace {

constexpr int64_t S = 3, B = 2, IN = 3, H = 2;

Tensor X() { return pat({S, B, IN}, 7, 11, 5, 4); }
Tensor H0(int64_t dirs = 1) { return pat({dirs, B, H}, 1, 5, 2, 4); }
Tensor C0(int64_t dirs = 1) { return pat({dirs, B, H}, 2, 7, 3, 5); }
Tensor W(int64_t gates, int64_t dirs = 1) { return pat({dirs, gates * H, IN}, 5, 7, 3, 8); }
Tensor R(int64_t gates, int64_t dirs = 1) { return pat({dirs, gates * H, H}, 3, 5, 2, 6); }
Tensor Bias(int64_t gates, int64_t dirs = 1) { return pat({dirs, 2 * gates * H}, 1, 3, 1, 4); }

// Element [t, d, b, j] of a layout-0 Y.
double y_at(const Tensor& y, int64_t t, int64_t d, int64_t b, int64_t j) {
  const int64_t dirs = y.shape()[1];
  return y.get(((t * dirs + d) * B + b) * H + j);
}

void expect_near_all(const Tensor& a, const Tensor& b, double tol = 1e-12) {
  ASSERT_EQ(a.shape(), b.shape());
  for (int64_t i = 0; i < a.numel(); ++i) EXPECT_NEAR(a.get(i), b.get(i), tol) << "at " << i;
}

std::string error_field(const std::string& op, const std::vector<Tensor>& ins, const Attributes& a,
                        int nout = 1) {
  try {
    run_op(op, ins, a, nout);
  } catch (const Error& e) {
    EXPECT_EQ(e.node(), "node") << e.what();
    return e.field();
  }
  return "(no error)";
}

}  // namespace

TEST(Recurrent, LstmMatchesTorch) {
  // torch.nn.LSTM(3, 2) with W/R/B reordered, initial (h0, c0).
  auto out = run_op("LSTM", {X(), W(4), R(4), Bias(4), Tensor(), H0(), C0()}, {}, 3);
  expect_tensor(
      out[0], {S, 1, B, H},
      {-0.232404811, 0.0455547962, 0.145340488, 0.0691054349, -0.0150217238, -0.0498952676,
       0.167147878, -0.0272789344, -0.0204565533, -0.165589585, 0.051493058, -0.136027728});
  expect_tensor(out[1], {1, B, H}, {-0.0204565533, -0.165589585, 0.051493058, -0.136027728});
  expect_tensor(out[2], {1, B, H}, {-0.0305826226, -0.262365645, 0.0757409876, -0.214283332});
}

TEST(Recurrent, GruLinearBeforeResetMatchesTorch) {
  // torch.nn.GRU is ONNX GRU with linear_before_reset = 1.
  auto out = run_op("GRU", {X(), W(3), R(3), Bias(3), Tensor(), H0()},
                    attrs({{"linear_before_reset", int64_t{1}}}), 2);
  expect_tensor(out[0], {S, 1, B, H},
                {-0.33575533, -0.0841548491, 0.271092485, 0.491338169, 0.177493306, 0.369860272,
                 0.476807054, 0.597003376, -0.148713374, 0.27726523, 0.0463252279, 0.366862226});
  expect_tensor(out[1], {1, B, H}, {-0.148713374, 0.27726523, 0.0463252279, 0.366862226});
}

TEST(Recurrent, RnnReluBidirectionalMatchesTorch) {
  // torch.nn.RNN(3, 2, nonlinearity='relu', bidirectional=True); Y [S, B, 2H] -> [S, 2, B, H].
  Tensor w = pat({2, H, IN}, 5, 7, 1, 8), r = pat({2, H, H}, 3, 5, 1, 6),
         b = pat({2, 2 * H}, 1, 3, 0, 4);
  auto out = run_op("RNN", {X(), w, r, b},
                    attrs({{"direction", std::string("bidirectional")},
                           {"activations", std::vector<std::string>{"Relu", "Relu"}}}),
                    2);
  expect_tensor(out[0], {S, 2, B, H},
                {0.78125,     0.375,  0.28125, 0.125,   0, 0.125,       0,     0.59375,
                 0.119791667, 0.0625, 0,       0,       0, 0.708333333, 0,     0.447916667,
                 0.500868056, 0.4375, 0.34375, 0.15625, 1, 1.65625,     0.875, 1.4375});
  expect_tensor(out[1], {2, B, H}, {0.500868056, 0.4375, 0.34375, 0.15625, 0, 0.125, 0, 0.59375});
}

TEST(Recurrent, GruDefaultResetsBeforeTheRecurrentProduct) {
  // linear_before_reset = 0: ht = tanh(Xt Wh' + (rt . Ht-1) Rh' + Rbh + Wbh); one step by hand.
  Tensor x = vals({1, 1, 1}, {0.5});
  Tensor w = vals({1, 3, 1}, {0.1, 0.2, 0.3}), r = vals({1, 3, 1}, {0.4, 0.5, 0.6});
  Tensor b = vals({1, 6}, {0.01, 0.02, 0.03, 0.04, 0.05, 0.06}), h0 = vals({1, 1, 1}, {0.7});
  auto sig = [](double v) { return 1 / (1 + std::exp(-v)); };
  const double z = sig(0.5 * 0.1 + 0.7 * 0.4 + 0.01 + 0.04);
  const double rr = sig(0.5 * 0.2 + 0.7 * 0.5 + 0.02 + 0.05);
  const double h0v = std::tanh(0.5 * 0.3 + (rr * 0.7) * 0.6 + 0.06 + 0.03);
  const double h1v = std::tanh(0.5 * 0.3 + rr * (0.7 * 0.6 + 0.06) + 0.03);
  Tensor y0 = run1("GRU", {x, w, r, b, Tensor(), h0});
  Tensor y1 = run1("GRU", {x, w, r, b, Tensor(), h0}, attrs({{"linear_before_reset", int64_t{1}}}));
  EXPECT_NEAR(y0.get(0), (1 - z) * h0v + z * 0.7, 1e-7);
  EXPECT_NEAR(y1.get(0), (1 - z) * h1v + z * 0.7, 1e-7);
}

TEST(Recurrent, LstmPeepholesInputForgetAndClip) {
  // One step, hidden 1, by hand: i = s(a_i + Pi c0), f = s(a_f + Pf c0), c = ..., o = s(a_o +
  // Po c1).
  Tensor x = vals({1, 1, 1}, {1.0});
  Tensor w = vals({1, 4, 1}, {0.5, -0.25, 0.75, 2.0}), r = vals({1, 4, 1}, {0.1, 0.2, 0.3, 0.4});
  Tensor h0 = vals({1, 1, 1}, {0.5}), c0 = vals({1, 1, 1}, {-0.5});
  Tensor p = vals({1, 3}, {0.3, 0.6, 0.9});
  auto sig = [](double v) { return 1 / (1 + std::exp(-v)); };
  auto step = [&](bool peep, bool coupled, double clip) {
    auto cl = [&](double v) { return clip > 0 ? std::max(-clip, std::min(clip, v)) : v; };
    const double ai = 0.5 + 0.05, ao = -0.25 + 0.1, af = 0.75 + 0.15, ac = 2.0 + 0.2;
    const double i = sig(cl(ai + (peep ? 0.3 * -0.5 : 0)));
    const double f = coupled ? 1 - i : sig(cl(af + (peep ? 0.9 * -0.5 : 0)));
    const double c = f * -0.5 + i * std::tanh(cl(ac));
    const double o = sig(cl(ao + (peep ? 0.6 * c : 0)));
    return o * std::tanh(cl(c));
  };
  Tensor none;
  auto run = [&](const Attributes& a, bool peep) {
    return run1("LSTM", {x, w, r, none, none, h0, c0, peep ? p : none}, a).get(0);
  };
  EXPECT_NEAR(run({}, false), step(false, false, 0), 1e-7);
  EXPECT_NEAR(run({}, true), step(true, false, 0), 1e-7);
  EXPECT_NEAR(run(attrs({{"input_forget", int64_t{1}}}), true), step(true, true, 0), 1e-7);
  EXPECT_NEAR(run(attrs({{"clip", 0.5}}), true), step(true, false, 0.5), 1e-7);
  EXPECT_NE(step(true, false, 0.5), step(true, false, 0));
}

TEST(Recurrent, ActivationsWithAlphaBetaConsumedInOrder) {
  // LeakyRelu takes alpha 0.5; Tanh takes none; HardSigmoid takes the next alpha and the beta.
  Tensor x = vals({1, 1, 1}, {-2.0}), w = vals({1, 1, 1}, {1.0}), r = vals({1, 1, 1}, {0.0});
  auto one = [&](const std::vector<std::string>& acts, const std::vector<double>& al,
                 const std::vector<double>& be) {
    Attributes a = attrs({{"activations", acts}});
    if (!al.empty()) a.set("activation_alpha", al);
    if (!be.empty()) a.set("activation_beta", be);
    return run1("RNN", {x, w, r}, a).get(0);
  };
  EXPECT_NEAR(one({"LeakyRelu"}, {0.5}, {}), -1.0, 1e-7);
  EXPECT_NEAR(one({"leakyrelu"}, {}, {}), -0.02, 1e-7);  // default 0.01, any case
  EXPECT_NEAR(one({"HardSigmoid"}, {0.25}, {0.75}), 0.25, 1e-7);
  EXPECT_NEAR(one({"HardSigmoid"}, {}, {}), 0.1, 1e-7);  // 0.2 * -2 + 0.5
  EXPECT_NEAR(one({"Affine"}, {3}, {1}), -5.0, 1e-7);
  EXPECT_NEAR(one({"ScaledTanh"}, {2}, {0.5}), 2 * std::tanh(-1.0), 1e-7);
  EXPECT_NEAR(one({"Softsign"}, {}, {}), -2.0 / 3.0, 1e-7);
  EXPECT_NEAR(one({"Softplus"}, {}, {}), std::log1p(std::exp(-2.0)), 1e-7);
  EXPECT_NEAR(one({"Elu"}, {}, {}), std::exp(-2.0) - 1, 1e-7);
  EXPECT_NEAR(one({"ThresholdedRelu"}, {}, {}), 0.0, 1e-7);
}

TEST(Recurrent, SequenceLensZeroTailAndLastStepState) {
  Tensor lens = Tensor::from_vector<int32_t>({B}, {2, 3});
  for (const std::string dir : {"forward", "reverse"}) {
    auto out = run_op("LSTM", {X(), W(4), R(4), Bias(4), lens, H0(), C0()},
                      attrs({{"direction", dir}}), 3);
    const Tensor& y = out[0];
    // batch 0 has 2 steps: Y[2] is 0; Y_h is the state after its last step.
    for (int64_t j = 0; j < H; ++j) {
      EXPECT_EQ(y_at(y, 2, 0, 0, j), 0.0);
      EXPECT_EQ(out[1].get(j), y_at(y, dir == "forward" ? 1 : 0, 0, 0, j)) << dir;
      EXPECT_EQ(out[1].get(H + j), y_at(y, dir == "forward" ? 2 : 0, 0, 1, j)) << dir;
    }
    // batch 0 = the same op on its first 2 steps alone.
    Tensor x2(DType::f32, {2, 1, IN}), h2(DType::f32, {1, 1, H}), c2(DType::f32, {1, 1, H});
    for (int64_t t = 0; t < 2; ++t)
      for (int64_t i = 0; i < IN; ++i) x2.set(t * IN + i, X().get((t * B) * IN + i));
    for (int64_t j = 0; j < H; ++j) h2.set(j, H0().get(j)), c2.set(j, C0().get(j));
    auto alone =
        run_op("LSTM", {x2, W(4), R(4), Bias(4), Tensor(), h2, c2}, attrs({{"direction", dir}}), 3);
    for (int64_t t = 0; t < 2; ++t)
      for (int64_t j = 0; j < H; ++j)
        EXPECT_NEAR(y_at(y, t, 0, 0, j), alone[0].get(t * H + j), 1e-7) << dir;
    for (int64_t j = 0; j < H; ++j) EXPECT_NEAR(out[2].get(j), alone[2].get(j), 1e-7) << dir;
  }
}

TEST(Recurrent, StepMaskCarriesStateOver) {
  // Masking step 1 of batch 0 = running batch 0 on steps 0 and 2 only; Y[1] repeats Y[0].
  Tensor mask = Tensor::from_vector<uint8_t>({S, B}, {1, 1, 0, 1, 1, 1});
  for (const char* op : {"LSTM", "GRU", "RNN"}) {
    const std::string o = op;
    const int64_t g = o == "LSTM" ? 4 : o == "GRU" ? 3 : 1;
    std::vector<Tensor> ins = {X(), W(g), R(g), Bias(g), Tensor(), H0()};
    if (o == "LSTM") ins.insert(ins.end(), {C0(), Tensor()});
    std::vector<Tensor> masked = ins, nomask = ins;
    masked.push_back(mask);
    const int nout = o == "LSTM" ? 3 : 2;
    auto ym = run_op(op, masked, {}, nout);
    auto yn = run_op(op, nomask, {}, nout);
    Tensor x2(DType::f32, {2, 1, IN});
    for (int64_t i = 0; i < IN; ++i) {
      x2.set(i, X().get(i));
      x2.set(IN + i, X().get(2 * B * IN + i));
    }
    Tensor h2(DType::f32, {1, 1, H}), c2(DType::f32, {1, 1, H});
    for (int64_t j = 0; j < H; ++j) h2.set(j, H0().get(j)), c2.set(j, C0().get(j));
    std::vector<Tensor> ins2 = {x2, W(g), R(g), Bias(g), Tensor(), h2};
    if (o == "LSTM") ins2.push_back(c2);
    auto y2 = run_op(op, ins2, {}, nout);
    for (int64_t j = 0; j < H; ++j) {
      EXPECT_EQ(y_at(ym[0], 1, 0, 0, j), y_at(ym[0], 0, 0, 0, j)) << op;
      EXPECT_NEAR(y_at(ym[0], 2, 0, 0, j), y2[0].get(H + j), 1e-7) << op;
      EXPECT_NEAR(ym[1].get(j), y2[1].get(j), 1e-7) << op;
      if (o == "LSTM") {
        EXPECT_NEAR(ym[2].get(j), y2[2].get(j), 1e-7) << op;
      }
      // batch 1 is unmasked: as without a mask.
      for (int64_t t = 0; t < S; ++t) EXPECT_EQ(y_at(ym[0], t, 0, 1, j), y_at(yn[0], t, 0, 1, j));
    }
  }
}

TEST(Recurrent, BidirectionalIsForwardPlusReverse) {
  Tensor w = W(3, 2), r = R(3, 2), b = Bias(3, 2), h0 = H0(2);
  auto half = [](const Tensor& t, int64_t d) {
    Shape s = t.shape();
    s[0] = 1;
    Tensor o(t.dtype(), s);
    for (int64_t i = 0; i < o.numel(); ++i) o.set(i, t.get(d * o.numel() + i));
    return o;
  };
  auto bi = run_op("GRU", {X(), w, r, b, Tensor(), h0},
                   attrs({{"direction", std::string("bidirectional")}}), 2);
  for (int64_t d = 0; d < 2; ++d) {
    auto one = run_op("GRU", {X(), half(w, d), half(r, d), half(b, d), Tensor(), half(h0, d)},
                      attrs({{"direction", std::string(d == 0 ? "forward" : "reverse")}}), 2);
    for (int64_t t = 0; t < S; ++t)
      for (int64_t bb = 0; bb < B; ++bb)
        for (int64_t j = 0; j < H; ++j)
          EXPECT_EQ(y_at(bi[0], t, d, bb, j), y_at(one[0], t, 0, bb, j));
    for (int64_t i = 0; i < B * H; ++i) EXPECT_EQ(bi[1].get(d * B * H + i), one[1].get(i));
  }
}

TEST(Recurrent, LayoutOneIsBatchFirst) {
  // layout 1: X [B, S, I], h0 [B, dirs, H], Y [B, S, dirs, H] = transposes of layout 0.
  auto out0 = run_op("LSTM", {X(), W(4, 2), R(4, 2), Bias(4, 2), Tensor(), H0(2), C0(2)},
                     attrs({{"direction", std::string("bidirectional")}}), 3);
  auto out1 =
      run_op("LSTM",
             {transpose(X(), {1, 0, 2}), W(4, 2), R(4, 2), Bias(4, 2), Tensor(),
              transpose(H0(2), {1, 0, 2}), transpose(C0(2), {1, 0, 2})},
             attrs({{"direction", std::string("bidirectional")}, {"layout", int64_t{1}}}), 3);
  expect_near_all(out1[0], transpose(out0[0], {2, 0, 1, 3}));
  expect_near_all(out1[1], transpose(out0[1], {1, 0, 2}));
  expect_near_all(out1[2], transpose(out0[2], {1, 0, 2}));
}

TEST(Recurrent, ErrorsNameTheField) {
  Tensor none;
  EXPECT_EQ(error_field("LSTM", {X(), W(3), R(4)}, {}), "W");
  EXPECT_EQ(error_field("LSTM", {X(), W(4), R(4)}, attrs({{"hidden_size", int64_t{3}}})),
            "hidden_size");
  EXPECT_EQ(error_field("GRU", {X(), W(3), R(3)},
                        attrs({{"activations", std::vector<std::string>{"Sigmoid", "Swish"}}})),
            "activations");
  EXPECT_EQ(error_field("GRU", {X(), W(3), R(3)},
                        attrs({{"activations", std::vector<std::string>{"Sigmoid"}}})),
            "activations");
  EXPECT_EQ(error_field("RNN", {X(), W(1), R(1)}, attrs({{"direction", std::string("both")}})),
            "direction");
  EXPECT_EQ(error_field("RNN", {X(), W(1), R(1), Bias(1, 2)}, {}), "B");
  EXPECT_EQ(error_field("RNN", {X(), W(1), R(1), none, none, H0(2)}, {}), "initial_h");
  EXPECT_EQ(error_field("RNN", {X(), W(1), R(1), none, i64s({1, 2, 3})}, {}), "sequence_lens");
  EXPECT_EQ(
      error_field("RNN", {X(), W(1), R(1), none, none, none, vals({B, S}, {1, 1, 1, 1, 1, 1})}, {}),
      "step_mask");
  EXPECT_EQ(error_field("RNN", {X(), W(1), R(1)},
                        attrs({{"activation_alpha", std::vector<double>{1.0}}})),
            "activation_alpha");
  EXPECT_EQ(error_field("RNN", {X(), W(1), R(1)}, attrs({{"input_forget", int64_t{1}}})),
            "input_forget");
  EXPECT_EQ(error_field("GRU", {pat({S, B}, 1, 3, 1, 2), W(3), R(3)}, {}), "X");
  EXPECT_EQ(error_field("RNN", {X(), W(1), R(1), none, i64s({4, 1})}, {}), "sequence_lens");
}
