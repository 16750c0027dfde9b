#!/usr/bin/python3
"""PyTorch ground truth for Anvil's recurrent ops: exports small nn.LSTM / nn.GRU / nn.RNN
models to ONNX (opset 14) with PyTorch's own outputs.

Run with Debian's /usr/bin/python3 (python3-torch 1.13, python3-onnx 1.12) from this folder:
    /usr/bin/python3 gen.py
Each case folder: model.onnx, inputs/<name>.npy, outputs/<name>.npy (PyTorch's outputs, float32),
case.json (the layout of tests/data/fixtures, read by tests/import/fixture_case.h).
"""
import json
import os
import shutil

import numpy as np
import torch

SEED = 14
HERE = os.path.dirname(os.path.abspath(__file__))


class Wrap(torch.nn.Module):
    """Returns every output of a recurrent module as a flat tuple."""

    def __init__(self, rnn, with_state):
        super().__init__()
        self.rnn = rnn
        self.with_state = with_state

    def forward(self, x, *state):
        if self.with_state:
            s = state if isinstance(self.rnn, torch.nn.LSTM) else state[0]
            y, hs = self.rnn(x, s)
        else:
            y, hs = self.rnn(x)
        if isinstance(hs, tuple):
            return (y,) + hs
        return y, hs


class EmbedLstm(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = torch.nn.Embedding(20, 8)
        self.lstm = torch.nn.LSTM(8, 16, batch_first=True)
        self.fc = torch.nn.Linear(16, 3)

    def forward(self, tokens):
        e = self.emb(tokens)
        _, (h, _) = self.lstm(e)
        return torch.softmax(self.fc(h[-1]), dim=-1)


class PackedGru(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.gru = torch.nn.GRU(4, 6)

    def forward(self, x, lens):
        p = torch.nn.utils.rnn.pack_padded_sequence(x, lens, enforce_sorted=True)
        y, h = self.gru(p)
        y, _ = torch.nn.utils.rnn.pad_packed_sequence(y, total_length=x.shape[0])
        return y, h


def save(name, model, inputs, input_names, output_names, note):
    d = os.path.join(HERE, name)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(os.path.join(d, "inputs"))
    os.makedirs(os.path.join(d, "outputs"))
    model.eval()
    with torch.no_grad():
        outs = model(*inputs)
    if not isinstance(outs, tuple):
        outs = (outs,)
    torch.onnx.export(model, tuple(inputs), os.path.join(d, "model.onnx"), opset_version=14,
                      input_names=input_names, output_names=output_names,
                      do_constant_folding=True)
    case = {"format": "onnx", "model": ["model.onnx"], "inputs": {}, "outputs": {},
            "input_shapes": {}, "output_shapes": {},
            "producer": "PyTorch %s (Debian python3-torch), torch.onnx.export opset 14" %
                        torch.__version__,
            "origin": "tests/data/pytorch-seq/gen.py, torch.manual_seed(%d)" % SEED,
            "notes": note, "rtol": 1e-5, "atol": 1e-6}
    for n, t in zip(input_names, inputs):
        a = t.numpy()
        np.save(os.path.join(d, "inputs", n + ".npy"), a)
        case["inputs"][n] = "inputs/%s.npy" % n
        case["input_shapes"][n] = list(a.shape)
    for n, t in zip(output_names, outs):
        a = t.numpy().astype(np.float32)
        np.save(os.path.join(d, "outputs", n + ".npy"), a)
        case["outputs"][n] = "outputs/%s.npy" % n
        case["output_shapes"][n] = list(a.shape)
    with open(os.path.join(d, "case.json"), "w") as f:
        json.dump(case, f, indent=1)
    print(name, {n: list(t.shape) for n, t in zip(output_names, outs)})


def main():
    torch.manual_seed(SEED)
    S, B = 5, 2
    x = lambda i, batch_first=False: torch.randn((B, S, i) if batch_first else (S, B, i))
    st = lambda layers, h: torch.randn(layers, B, h)

    save("lstm_state", Wrap(torch.nn.LSTM(5, 8), True), [x(5), st(1, 8), st(1, 8)],
         ["x", "h0", "c0"], ["y", "hn", "cn"], "nn.LSTM(5, 8) with initial (h0, c0)")
    save("lstm_bidir_2layer", Wrap(torch.nn.LSTM(4, 6, num_layers=2, bidirectional=True), False),
         [x(4)], ["x"], ["y", "hn", "cn"], "nn.LSTM(4, 6, num_layers=2, bidirectional=True)")
    save("lstm_batch_first", Wrap(torch.nn.LSTM(3, 7, batch_first=True), True),
         [x(3, True), st(1, 7), st(1, 7)], ["x", "h0", "c0"], ["y", "hn", "cn"],
         "nn.LSTM(3, 7, batch_first=True) with initial states")
    save("gru_state", Wrap(torch.nn.GRU(5, 8), True), [x(5), st(1, 8)], ["x", "h0"], ["y", "hn"],
         "nn.GRU(5, 8) with h0 (ONNX GRU linear_before_reset=1)")
    save("gru_bidir_2layer", Wrap(torch.nn.GRU(4, 6, num_layers=2, bidirectional=True), True),
         [x(4), st(4, 6)], ["x", "h0"], ["y", "hn"],
         "nn.GRU(4, 6, num_layers=2, bidirectional=True) with h0")
    save("rnn_tanh_2layer", Wrap(torch.nn.RNN(4, 6, num_layers=2), False), [x(4)], ["x"],
         ["y", "hn"], "nn.RNN(4, 6, num_layers=2), tanh")
    save("rnn_relu_bidir", Wrap(torch.nn.RNN(4, 6, nonlinearity="relu", bidirectional=True,
                                             batch_first=True), True),
         [x(4, True), st(2, 6)], ["x", "h0"], ["y", "hn"],
         "nn.RNN(4, 6, nonlinearity='relu', bidirectional=True, batch_first=True) with h0")
    save("embed_lstm_classifier", EmbedLstm(), [torch.randint(0, 20, (B, 7))], ["tokens"],
         ["probs"], "Embedding(20, 8) -> LSTM(8, 16, batch_first) -> Linear(16, 3) on h_n -> softmax")
    try:
        save("gru_packed_lens", PackedGru(), [x(4), torch.tensor([5, 3], dtype=torch.int64)],
             ["x", "lens"], ["y", "hn"],
             "nn.GRU(4, 6) on pack_padded_sequence(x, lens) -> pad_packed_sequence: ONNX GRU "
             "with sequence_lens")
    except Exception as e:  # the exporter may not support packed sequences
        print("gru_packed_lens: not exported:", e)


if __name__ == "__main__":
    main()
