#!/usr/bin/python3
"""Exports the benchmark models (bench/run.sh) to ONNX with Debian's python3-torch.

    /usr/bin/python3 python/export_bench_models.py [--out bench/models] [--models a,b,...]

Models: torchvision's ResNet-50, MobileNetV2, SqueezeNet 1.1 and GoogLeNet (batch 1,
3x224x224) and the small MNIST CNN of PyTorch's MNIST example (batch 1, 1x28x28). Weights are
random (weights=None: nothing is downloaded) from torch.manual_seed(0), models in eval mode.

For every model NAME it writes, into --out:
  NAME.onnx          opset 13, as torch 1.13 exports it (constant folding on; torch
                     de-duplicates identical initializers and puts Identity nodes on them).
                     Anvil and ONNX Runtime run this file.
  NAME.opset10.onnx  the same network exported at opset 10 (Clip takes min/max as attributes)
                     with every Identity on an initializer replaced by its own copy of the
                     initializer: OpenCV 4.6's dnn reader rejects both Identity on initializers
                     and Clip with min/max inputs. OpenCV runs this file.
and models.json: for each model its files, input name and shape, and GFLOP (2 x the
multiply-adds of its convolutions and fully connected layers, counted with forward hooks).
Existing files are rewritten only when --force is given or the torch version or the export
recipe (RECIPE) changed.
"""
import argparse
import inspect
import json
import os
import sys

import numpy as np
import onnx
import torch
import torch.nn as nn
import torchvision


class MnistCNN(nn.Module):
    """The CNN of PyTorch's examples/mnist (two 3x3 convs, max pool, two dense layers)."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, 1)
        self.conv2 = nn.Conv2d(32, 64, 3, 1)
        self.dropout1 = nn.Dropout(0.25)
        self.dropout2 = nn.Dropout(0.5)
        self.fc1 = nn.Linear(9216, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x):
        x = torch.relu(self.conv1(x))
        x = torch.relu(self.conv2(x))
        x = torch.max_pool2d(x, 2)
        x = self.dropout1(x)
        x = torch.flatten(x, 1)
        x = torch.relu(self.fc1(x))
        x = self.dropout2(x)
        return torch.log_softmax(self.fc2(x), dim=1)


RESCALE_BN = {"googlenet"}  # see rescale_batchnorms
RECIPE = 2  # bumped when an export changes: models of an older recipe are exported again

MODELS = {
    # name: (constructor, input shape, title)
    "resnet50": (lambda: torchvision.models.resnet50(weights=None), (1, 3, 224, 224), "ResNet-50"),
    "mobilenet_v2": (lambda: torchvision.models.mobilenet_v2(weights=None), (1, 3, 224, 224),
                     "MobileNetV2"),
    "squeezenet1_1": (lambda: torchvision.models.squeezenet1_1(weights=None), (1, 3, 224, 224),
                      "SqueezeNet 1.1"),
    "googlenet": (lambda: torchvision.models.googlenet(weights=None, aux_logits=False,
                                                       init_weights=True),
                  (1, 3, 224, 224), "GoogLeNet"),
    "mnist_cnn": (MnistCNN, (1, 1, 28, 28), "MNIST CNN"),
}


def count_gflop(model, x):
    """2 x multiply-adds of Conv2d and Linear layers for one forward pass of x."""
    macs = [0]

    def conv_hook(m, inp, out):
        k = m.kernel_size[0] * m.kernel_size[1]
        macs[0] += out.numel() * (m.in_channels // m.groups) * k

    def linear_hook(m, inp, out):
        macs[0] += out.numel() * m.in_features

    hooks = []
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            hooks.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.Linear):
            hooks.append(m.register_forward_hook(linear_hook))
    with torch.no_grad():
        model(x)
    for h in hooks:
        h.remove()
    return 2.0 * macs[0] / 1e9


def rescale_batchnorms(model, x, passes=2):
    """Scales each BatchNorm's weight and bias so its output on x has unit standard deviation.
    With random weights GoogLeNet's activations shrink layer by layer (~1e-10-fold by the
    classifier), its output is then just the last bias, and comparing outputs across engines
    would show nothing; this keeps every layer's values in a normal range. Timing is unaffected."""
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    for _ in range(passes):
        for bn in bns:
            got = {}
            h = bn.register_forward_hook(lambda m, i, o: got.__setitem__("y", o))
            with torch.no_grad():
                model(x)
            h.remove()
            sd = float(got["y"].std())
            if sd > 0:
                bn.weight.data /= sd
                bn.bias.data /= sd


def undedup_initializers(path_in, path_out):
    """Replaces each Identity whose input is an initializer by a copy of that initializer
    named as the Identity's output (OpenCV 4.6 cannot read Identity on initializers)."""
    m = onnx.load(path_in)
    g = m.graph
    inits = {t.name: t for t in g.initializer}
    keep, copies = [], []
    for n in g.node:
        if n.op_type == "Identity" and n.input[0] in inits:
            t = onnx.TensorProto()
            t.CopyFrom(inits[n.input[0]])
            t.name = n.output[0]
            copies.append(t)
        else:
            keep.append(n)
    del g.node[:]
    g.node.extend(keep)
    g.initializer.extend(copies)
    # Drop initializers no node uses any more.
    used = {i for n in g.node for i in n.input} | {o.name for o in g.output}
    live = [t for t in g.initializer if t.name in used]
    del g.initializer[:]
    g.initializer.extend(live)
    onnx.checker.check_model(m)
    onnx.save(m, path_out)
    return len(copies)


def build(name):
    """Model NAME with its benchmark weights (torch.manual_seed(0), eval mode; GoogLeNet's batch
    norms rescaled, see rescale_batchnorms) and its seeded benchmark input (batch 1, fp32).
    Also used by bench/torch_cuda_bench.py, so that PyTorch and Anvil run the same network."""
    ctor, shape, title = MODELS[name]
    torch.manual_seed(0)
    model = ctor().eval()
    x = torch.from_numpy(np.random.RandomState(1).standard_normal(shape).astype(np.float32))
    if name in RESCALE_BN:
        rescale_batchnorms(model, x)
    return model, x


def export_onnx(model, x, path, opset, dynamic_batch=False):
    """torch.onnx.export with input "input" and output "output"; dynamic_batch makes dim 0 of
    both symbolic ("batch"). Uses the TorchScript exporter where torch has both (torch 2.9+
    defaults to the dynamo one), falling back to the dynamo exporter where it is gone."""
    kw = dict(opset_version=opset, input_names=["input"], output_names=["output"], do_constant_folding=True)
    if dynamic_batch:
        kw["dynamic_axes"] = {"input": {0: "batch"}, "output": {0: "batch"}}
    has_dynamo = "dynamo" in inspect.signature(torch.onnx.export).parameters
    with torch.no_grad():
        if not has_dynamo:
            torch.onnx.export(model, x, path, **kw)
            return "torchscript"
        try:
            torch.onnx.export(model, x, path, dynamo=False, **kw)
            return "torchscript"
        except Exception as e:  # the TorchScript exporter removed or failing: the dynamo one
            print(f"export_onnx: TorchScript exporter failed ({type(e).__name__}: {e}); using dynamo=True",
                  file=sys.stderr, flush=True)
            kw.pop("dynamic_axes", None)
            kw.pop("do_constant_folding", None)
            if dynamic_batch:
                # torch.export specializes dims of size 1: trace with batch 2.
                if x.shape[0] == 1:
                    x = torch.cat([x, x])
                kw["dynamic_shapes"] = ({0: torch.export.Dim("batch", min=1, max=4096)},)
            torch.onnx.export(model, (x,), path, dynamo=True, **kw)
            return "dynamo"


def export(name, out):
    ctor, shape, title = MODELS[name]
    model, x = build(name)
    entry = {"title": title, "input": "input", "shape": list(shape), "onnx": name + ".onnx",
             "opencv_onnx": name + ".opset10.onnx", "gflop": round(count_gflop(model, x), 4),
             "torch": torch.__version__, "torchvision": torchvision.__version__, "recipe": RECIPE}
    for opset, fname in ((13, entry["onnx"]), (10, name + ".opset10.raw.onnx")):
        export_onnx(model, x, os.path.join(out, fname), opset)
    raw = os.path.join(out, name + ".opset10.raw.onnx")
    n = undedup_initializers(raw, os.path.join(out, entry["opencv_onnx"]))
    os.remove(raw)
    np.save(os.path.join(out, name + ".input.npy"), x.numpy())
    print(f"{name}: {entry['gflop']} GFLOP, {entry['onnx']} and {entry['opencv_onnx']} "
          f"({n} Identity initializers copied)", flush=True)
    return entry


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--out", default=os.path.join(here, "..", "bench", "models"))
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--force", action="store_true", help="re-export models already there")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    index_path = os.path.join(a.out, "models.json")
    index = {}
    if os.path.exists(index_path):
        with open(index_path) as f:
            index = json.load(f)
    names = [m for m in a.models.split(",") if m]
    for name in names:
        if name not in MODELS:
            sys.exit(f"unknown model '{name}' (known: {', '.join(MODELS)})")
        have = index.get(name)
        if (not a.force and have and have.get("torch") == torch.__version__ and
                have.get("recipe") == RECIPE and
                os.path.exists(os.path.join(a.out, have["onnx"])) and
                os.path.exists(os.path.join(a.out, have["opencv_onnx"]))):
            print(f"{name}: up to date", flush=True)
            continue
        index[name] = export(name, a.out)
        with open(index_path, "w") as f:
            json.dump(index, f, indent=1, sort_keys=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
