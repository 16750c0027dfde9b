#!/usr/bin/python3
"""Exports a PyTorch model to ONNX and dumps a reference for the exported file.

    python3 anvil_dump_torch.py --factory mynet.py:build --weights mynet.pth \\
        --input image=x.npy --onnx mynet.onnx -o ref.npz
    anvil verify mynet.onnx --reference ref.npz

Anvil imports PyTorch models through ONNX, so the reference is keyed by the ONNX value names of
the exported graph (e.g. "/layer1/conv1/Conv_output_0"), which only the exporter knows: a
forward hook on a torch module cannot tell which ONNX value its output became. So this script
(1) runs the model in PyTorch, (2) exports it with torch.onnx.export (the input and output names
given here become the ONNX graph's), and (3) if the Python `onnxruntime` package is installed,
runs the exported file with anvil_dump_onnx.py's dumper (every intermediate value) and checks
ONNX Runtime's outputs against PyTorch's; without onnxruntime it writes the inputs and
PyTorch's own outputs under the ONNX output names (intermediate values then stay unchecked).

The model: --factory FILE.py:FUNCTION (or package.module:FUNCTION) returning an nn.Module,
optionally with --weights (a state_dict), or --model FILE (TorchScript, or a whole pickled
module from torch.save(model)). Inputs are fed in the order given.
"""
import importlib
import importlib.util
import os
import sys
from collections import OrderedDict

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import anvil_dump_common as common  # noqa: E402


def load_module(args):
    import torch
    if args.factory:
        where, _, func = args.factory.rpartition(":")
        if not where or not func:
            raise common.DumpError("--factory wants FILE.py:FUNCTION or module:FUNCTION")
        if where.endswith(".py"):
            if not os.path.exists(where):
                raise common.DumpError("file not found: %s" % where)
            spec = importlib.util.spec_from_file_location("anvil_dump_factory", where)
            mod = importlib.util.module_from_spec(spec)
            sys.path.insert(0, os.path.dirname(os.path.abspath(where)))
            spec.loader.exec_module(mod)
        else:
            mod = importlib.import_module(where)
        model = getattr(mod, func)()
    elif args.model:
        if not os.path.exists(args.model):
            raise common.DumpError("file not found: %s" % args.model)
        try:
            model = torch.jit.load(args.model, map_location="cpu")
        except RuntimeError:
            model = torch.load(args.model, map_location="cpu")
    else:
        raise common.DumpError("give --factory FILE.py:FUNCTION or --model FILE")
    if args.weights:
        state = torch.load(args.weights, map_location="cpu")
        if isinstance(state, dict) and "state_dict" in state:
            state = state["state_dict"]
        model.load_state_dict(state)
    if not isinstance(model, torch.nn.Module):
        raise common.DumpError("the model is a %s, not a torch.nn.Module" % type(model).__name__)
    return model.eval()


def flat_outputs(out):
    import torch
    if isinstance(out, torch.Tensor):
        return [out]
    if isinstance(out, dict):
        out = list(out.values())
    if isinstance(out, (list, tuple)):
        return [t for o in out for t in flat_outputs(o)]
    raise common.DumpError("the model returned a %s; only tensors (or lists/tuples/dicts of "
                           "them) can be exported" % type(out).__name__)


def main():
    p = common.make_parser(__doc__, [], "nchw")
    p.add_argument("--factory", help="FILE.py:FUNCTION or module:FUNCTION returning the model")
    p.add_argument("--model", help="TorchScript file, or a module saved with torch.save(model)")
    p.add_argument("--weights", help="a state_dict to load (torch.save(model.state_dict()))")
    p.add_argument("--onnx", required=True, help="the ONNX file to export (give it to anvil)")
    p.add_argument("--input-names", help="comma-separated ONNX input names, in forward()'s "
                   "order (default: the NAME= of each --input, or 'input')")
    p.add_argument("--output-names", help="comma-separated ONNX output names (default: "
                   "'output', or output_0, output_1... for several)")
    p.add_argument("--opset", type=int, default=13)
    p.add_argument("--dynamic-batch", action="store_true", help="export dim 0 as free")
    args = p.parse_args()

    import torch
    model = load_module(args)
    if args.input_names:
        names = args.input_names.split(",")
    else:
        names = [common.split_input_spec(s)[0] for s in args.input]
        if len(names) == 1 and names[0] is None:
            names = ["input"]
        if None in names:
            raise common.DumpError("several inputs: name each (--input NAME=FILE)")
    feeds = common.load_inputs(args, names)
    tensors = tuple(torch.from_numpy(np.ascontiguousarray(a)) for a in feeds.values())
    with torch.no_grad():
        ref = [t.detach().cpu().numpy() for t in flat_outputs(model(*tensors))]
    if args.output_names:
        out_names = args.output_names.split(",")
        if len(out_names) != len(ref):
            raise common.DumpError("%d output names for %d outputs" % (len(out_names), len(ref)))
    else:
        out_names = ["output"] if len(ref) == 1 else ["output_%d" % i for i in range(len(ref))]
    dynamic = None
    if args.dynamic_batch:
        dynamic = {n: {0: "batch"} for n in list(names) + out_names}
    torch.onnx.export(model, tensors, args.onnx, input_names=list(names), output_names=out_names,
                      opset_version=args.opset, do_constant_folding=True, dynamic_axes=dynamic)
    print("exported %s (opset %d, torch %s)" % (args.onnx, args.opset, torch.__version__))

    notes = []
    try:
        import onnxruntime  # noqa: F401
        have_ort = True
    except ImportError:
        have_ort = False
    if have_ort:
        import onnx
        import anvil_dump_onnx
        exported = onnx.load(args.onnx)
        ort_feeds = anvil_dump_onnx.cast_feeds(exported, feeds)
        outputs = anvil_dump_onnx.dump_onnx(exported, ort_feeds)
        for n, r in zip(out_names, ref):
            d = float(np.max(np.abs(outputs[n].astype(np.float64) - r))) if r.size else 0.0
            notes.append("output %s: ONNX Runtime vs PyTorch max abs difference %.3g" % (n, d))
    else:
        outputs = OrderedDict(zip(out_names, ref))
        notes.append("onnxruntime is not installed: only the inputs and PyTorch's outputs are "
                     "written (anvil verify leaves intermediate values unchecked)")
    common.write_npz(args.output, feeds, outputs, args, notes)


if __name__ == "__main__":
    common.run_main(main)
