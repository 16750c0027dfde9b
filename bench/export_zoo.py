#!/usr/bin/python3
"""Exports the benchmark zoo (bench/run.sh --zoo) to ONNX with Debian's python3-torch.

    /usr/bin/python3 bench/export_zoo.py [--out bench/models/zoo] [--models a,b] [--max-gflop 10]
                                         [--list] [--force] [--all]

The zoo: every classification model of torchvision whose 224x224 forward is under --max-gflop GFLOP (2 x multiply-adds of its convolutions and fully
connected layers, as python/export_bench_models.py counts them). Weights are random
(weights=None: nothing is downloaded) from torch.manual_seed(0), models in eval mode, batch 1,
fp32. CNNs are exported at opset 13 (LayerNorm and GELU written out by the exporter as
ReduceMean/Sub/Pow/Sqrt/Div and Erf chains), transformer-style models (Swin, ViT) at opset 17,
as the issue measured them. Writes NAME.onnx, NAME.input.npy and models.json (the format
bench/harness.py reads; `opencv_onnx` names the same file: OpenCV is not run on the zoo).
Models already exported with the same torch version are skipped unless --force.
"""
import argparse
import json
import os
import sys
import time

import numpy as np
import torch
import torchvision

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "python"))
from export_bench_models import count_gflop, export_onnx  # noqa: E402

OPSET17 = ("swin", "vit_", "maxvit")
KWARGS = {"googlenet": dict(aux_logits=False, init_weights=False),
          "inception_v3": dict(aux_logits=False, init_weights=False)}
RECIPE = 1


# torchvision 0.14's classification models under 10 GFLOP at 224x224 (from torchvision's
# published multiply-add counts, rescaled to 224x224), the archetypes first: building a
# model far over the limit (regnet_y_128gf, vit_h_14) takes minutes and gigabytes, so only
# --all tries every model of torchvision.models.list_models. Every candidate is still counted
# and skipped when over --max-gflop.
ZOO = ["regnet_x_400mf", "convnext_tiny", "shufflenet_v2_x1_0", "resnet18", "swin_t",
       "resnext50_32x4d", "efficientnet_b0", "mobilenet_v3_large", "densenet121", "vit_b_32",
       "regnet_y_400mf", "inception_v3", "mnasnet1_0", "resnet50", "mobilenet_v2", "squeezenet1_1",
       "googlenet", "alexnet", "resnet34", "regnet_x_800mf", "regnet_x_1_6gf", "regnet_x_3_2gf",
       "regnet_y_800mf", "regnet_y_1_6gf", "regnet_y_3_2gf", "shufflenet_v2_x0_5",
       "shufflenet_v2_x1_5", "shufflenet_v2_x2_0", "mobilenet_v3_small", "mnasnet0_5", "mnasnet0_75",
       "mnasnet1_3", "squeezenet1_0", "densenet169", "densenet201", "efficientnet_b1",
       "efficientnet_b2", "efficientnet_b3", "efficientnet_b4", "efficientnet_b5", "efficientnet_b6",
       "efficientnet_b7", "efficientnet_v2_s"]


def candidates(everything):
    if everything:
        return sorted(torchvision.models.list_models(module=torchvision.models))
    return ZOO


def build(name):
    torch.manual_seed(0)
    model = torchvision.models.get_model(name, weights=None, **KWARGS.get(name, {})).eval()
    x = torch.from_numpy(np.random.RandomState(1).standard_normal((1, 3, 224, 224)).astype(np.float32))
    return model, x


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.path.join(HERE, "models", "zoo"))
    ap.add_argument("--models", default="", help="comma-separated subset (default: every candidate)")
    ap.add_argument("--max-gflop", type=float, default=10.0)
    ap.add_argument("--list", action="store_true", help="print the zoo (name, GFLOP) and exit")
    ap.add_argument("--force", action="store_true")
    ap.add_argument("--all", action="store_true", help="try every model of torchvision.models")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    index_path = os.path.join(a.out, "models.json")
    index = json.load(open(index_path)) if os.path.exists(index_path) else {}
    skipped_path = os.path.join(a.out, "skipped.json")
    skipped = json.load(open(skipped_path)) if os.path.exists(skipped_path) else {}
    names = [m for m in a.models.split(",") if m] or candidates(a.all)
    torch.set_num_threads(1)
    for name in names:
        have = index.get(name)
        if (not a.force and have and have.get("torch") == torch.__version__ and have.get("recipe") == RECIPE and
                os.path.exists(os.path.join(a.out, have["onnx"]))):
            print(f"{name}: up to date ({have['gflop']} GFLOP)", flush=True)
            continue
        if not a.force and name in skipped:
            print(f"{name}: skipped ({skipped[name]})", flush=True)
            continue
        t0 = time.time()
        try:
            model, x = build(name)
            gflop = round(count_gflop(model, x), 4)
        except Exception as e:  # a model that does not take 224x224 (or fails to build)
            skipped[name] = f"{type(e).__name__}: {str(e)[:120]}"
            print(f"{name}: skipped ({skipped[name]})", flush=True)
            json.dump(skipped, open(skipped_path, "w"), indent=1, sort_keys=True)
            continue
        if gflop >= a.max_gflop:
            skipped[name] = f"{gflop} GFLOP"
            print(f"{name}: {gflop} GFLOP, over {a.max_gflop}", flush=True)
            json.dump(skipped, open(skipped_path, "w"), indent=1, sort_keys=True)
            continue
        if a.list:
            print(f"{name}: {gflop} GFLOP", flush=True)
            continue
        opset = 17 if name.startswith(OPSET17) else 13
        fname = name + ".onnx"
        try:
            export_onnx(model, x, os.path.join(a.out, fname), opset)
        except Exception as e:
            skipped[name] = f"export failed: {type(e).__name__}: {str(e)[:120]}"
            print(f"{name}: {skipped[name]}", flush=True)
            json.dump(skipped, open(skipped_path, "w"), indent=1, sort_keys=True)
            continue
        np.save(os.path.join(a.out, name + ".input.npy"), x.numpy())
        index[name] = {"title": name, "input": "input", "shape": [1, 3, 224, 224], "onnx": fname,
                       "opencv_onnx": fname, "gflop": gflop, "opset": opset, "torch": torch.__version__,
                       "torchvision": torchvision.__version__, "recipe": RECIPE}
        json.dump(index, open(index_path, "w"), indent=1, sort_keys=True)
        print(f"{name}: {gflop} GFLOP, opset {opset}, {time.time() - t0:.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
