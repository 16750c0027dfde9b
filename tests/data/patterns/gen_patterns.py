#!/usr/bin/python3
"""Exports the tiny torch modules of the pattern-pass tests (tests/unit/pattern_passes_test.cpp)
with Debian's python3-torch (torch.onnx.export, TorchScript exporter, opset 13, constant
folding on), so the tests see the node chains the real exporter writes:

    /usr/bin/python3 tests/data/patterns/gen_patterns.py   (writes *.onnx beside this file)
"""
import os

import torch
import torch.nn as nn

HERE = os.path.dirname(os.path.abspath(__file__))


class LayerNormNHWC(nn.Module):
    """ConvNeXt's channels-last LayerNorm: NCHW -> NHWC, LayerNorm(C), back."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(4, 16, 3, padding=1)
        self.ln = nn.LayerNorm(16, eps=1e-6)

    def forward(self, x):
        y = self.conv(x).permute(0, 2, 3, 1)
        return self.ln(y).permute(0, 3, 1, 2)


class Gelu(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(16, 32)

    def forward(self, x):
        return nn.functional.gelu(self.fc(x))


class SiluHardswish(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(4, 8, 1)

    def forward(self, x):
        return nn.functional.hardswish(nn.functional.silu(self.conv(x)))


def main():
    torch.manual_seed(0)
    for name, m, shape in (("layernorm_nhwc", LayerNormNHWC(), (1, 4, 6, 5)),
                           ("gelu_erf", Gelu(), (2, 7, 16)),
                           ("silu_hardswish", SiluHardswish(), (1, 4, 5, 5))):
        torch.onnx.export(m.eval(), torch.randn(*shape), os.path.join(HERE, name + ".onnx"),
                          opset_version=13, input_names=["input"], output_names=["output"],
                          do_constant_folding=True)
        print(name, shape)


if __name__ == "__main__":
    main()
