#!/usr/bin/python3
"""Exports torchvision models to ONNX with Debian's python3-torch and checks that
`anvil run` reproduces PyTorch's outputs.

Run by hand (not in CI: the models are large and the reference backend is slow):
    /usr/bin/python3 python/check_torchvision.py --anvil build/anvil [--models resnet50,...]
        [--workdir /tmp/anvil-torchvision] [--backend reference] [--rtol 1e-4]

Models use random weights (weights=None: nothing is downloaded), batch 1, 3x224x224,
seeded input. The check passes when max|anvil - torch| <= rtol * max|torch| for every output.
"""
import argparse
import os
import subprocess
import sys
import time

import numpy as np
import torch
import torchvision

MODELS = {
    "resnet50": lambda: torchvision.models.resnet50(weights=None),
    "mobilenet_v2": lambda: torchvision.models.mobilenet_v2(weights=None),
    "squeezenet1_1": lambda: torchvision.models.squeezenet1_1(weights=None),
    "googlenet": lambda: torchvision.models.googlenet(weights=None, aux_logits=False,
                                                      init_weights=True),
}


def export(name, workdir, opset=13):
    torch.manual_seed(0)
    model = MODELS[name]().eval()
    x = torch.from_numpy(np.random.RandomState(1).standard_normal((1, 3, 224, 224)).astype(np.float32))
    path = os.path.join(workdir, name + ".onnx")
    with torch.no_grad():
        y = model(x)
        torch.onnx.export(model, x, path, opset_version=opset, input_names=["input"],
                          output_names=["output"], do_constant_folding=True)
    np.save(os.path.join(workdir, name + ".input.npy"), x.numpy())
    np.save(os.path.join(workdir, name + ".expected.npy"), y.numpy())
    return path


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--anvil", default="build/anvil")
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--workdir", default="/tmp/anvil-torchvision")
    ap.add_argument("--backend", default="reference")
    ap.add_argument("--rtol", type=float, default=1e-4)
    args = ap.parse_args()
    os.makedirs(args.workdir, exist_ok=True)
    failed = 0
    for name in args.models.split(","):
        path = export(name, args.workdir)
        outdir = os.path.join(args.workdir, name + ".out")
        os.makedirs(outdir, exist_ok=True)
        t0 = time.time()
        r = subprocess.run([args.anvil, "run", path, "--input",
                            os.path.join(args.workdir, name + ".input.npy"),
                            "--output-dir", outdir, "--backend", args.backend],
                           capture_output=True, text=True)
        dt = time.time() - t0
        if r.returncode != 0:
            print(f"{name}: anvil run failed ({r.returncode}): {r.stderr.strip()}")
            failed += 1
            continue
        got = np.load(os.path.join(outdir, "output.npy"))
        ref = np.load(os.path.join(args.workdir, name + ".expected.npy"))
        err = float(np.max(np.abs(got.astype(np.float64) - ref)))
        scale = float(np.max(np.abs(ref)))
        ok = got.shape == ref.shape and err <= args.rtol * scale
        failed += 0 if ok else 1
        size_mb = os.path.getsize(path) / 1e6
        print(f"{name}: {'OK  ' if ok else 'FAIL'} max_abs={err:.3g} max|ref|={scale:.3g} "
              f"rel={err / scale:.3g} top1 anvil={int(got.argmax())} torch={int(ref.argmax())} "
              f"onnx={size_mb:.1f} MB anvil_run={dt:.1f} s")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
