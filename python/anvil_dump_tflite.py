#!/usr/bin/python3
"""Dumps every op output of a TensorFlow Lite model into an .npz for `anvil verify`.

    python3 anvil_dump_tflite.py model.tflite --input serving_default_x:0=x.npy -o ref.npz
    anvil verify model.tflite --reference ref.npz

Needs tf.lite.Interpreter (TensorFlow >= 2.5) or the tflite_runtime package: the interpreter is
made with experimental_preserve_all_tensors=True, so that after one invoke() every intermediate
tensor still holds its value. Each operator's outputs are written under their TFLite tensor
names, in operator order; constant tensors (weights) are not. Quantized tensors are written as
stored (int8/uint8/int16) unless --dequantize (then float32 = scale * (q - zero_point), per
channel where the tensor is quantized per channel). A float array given for a quantized input
is quantized with that input's scale and zero point. Images: NHWC.
"""
import os
import sys
from collections import OrderedDict

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import anvil_dump_common as common  # noqa: E402


def make_interpreter(path, threads):
    try:
        from tflite_runtime.interpreter import Interpreter
    except ImportError:
        import tensorflow as tf
        Interpreter = tf.lite.Interpreter
    try:
        return Interpreter(model_path=path, num_threads=threads,
                           experimental_preserve_all_tensors=True)
    except TypeError:
        raise common.DumpError("this TensorFlow Lite has no experimental_preserve_all_tensors "
                               "(it needs TensorFlow >= 2.5)")


def quant_params(detail):
    q = detail.get("quantization_parameters") or {}
    scales = np.asarray(q.get("scales", []), dtype=np.float64)
    zps = np.asarray(q.get("zero_points", []), dtype=np.float64)
    return scales, zps, int(q.get("quantized_dimension", 0))


def dequantize(value, detail):
    scales, zps, axis = quant_params(detail)
    if scales.size == 0 or not np.issubdtype(value.dtype, np.integer):
        return value
    shape = [1] * value.ndim
    if scales.size > 1 and value.ndim:
        shape[axis] = scales.size
    return ((value.astype(np.float64) - zps.reshape(shape)) * scales.reshape(shape)).astype(
        np.float32)


def quantize(value, detail):
    scales, zps, _ = quant_params(detail)
    dtype = np.dtype(detail["dtype"])
    if scales.size != 1:
        raise common.DumpError("input %s is quantized per channel: give it as %s"
                               % (detail["name"], dtype))
    info = np.iinfo(dtype)
    q = np.round(value.astype(np.float64) / scales[0] + zps[0])
    return np.clip(q, info.min, info.max).astype(dtype)


def main():
    p = common.make_parser(__doc__, [("model", "the .tflite file")], "nhwc")
    p.add_argument("--dequantize", action="store_true",
                   help="write quantized tensors as float32 values")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    if not os.path.exists(args.model):
        raise common.DumpError("file not found: %s" % args.model)
    interp = make_interpreter(args.model, args.threads)
    ins = interp.get_input_details()
    names = [d["name"] for d in ins]
    feeds = common.load_inputs(args, names, {d["name"]: tuple(d["shape"]) for d in ins})
    notes = []
    for d in ins:
        if tuple(feeds[d["name"]].shape) != tuple(d["shape"]):
            interp.resize_tensor_input(d["index"], list(feeds[d["name"]].shape))
    interp.allocate_tensors()
    for d in ins:
        a = feeds[d["name"]]
        dtype = np.dtype(d["dtype"])
        if np.issubdtype(dtype, np.integer) and np.issubdtype(a.dtype, np.floating) and \
                quant_params(d)[0].size:
            a = quantize(a, d)
            notes.append("input %s quantized to %s with its scale and zero point"
                         % (d["name"], dtype))
        feeds[d["name"]] = a.astype(dtype, copy=False)
        interp.set_tensor(d["index"], feeds[d["name"]])
    interp.invoke()

    details = {d["index"]: d for d in interp.get_tensor_details()}
    try:
        ops = interp._get_ops_details()  # operator order and outputs (TF >= 2.5)
        order = [int(i) for op in ops for i in op["outputs"] if int(i) >= 0]
    except AttributeError:
        order = sorted(details)
        notes.append("this interpreter does not list operators: every tensor with a value "
                     "is written, weights included")
    outputs = OrderedDict()
    for idx in order:
        d = details.get(idx)
        if d is None or d["name"] in feeds:
            continue
        try:
            v = np.array(interp.get_tensor(idx))
        except ValueError:  # no data (optional or not preserved)
            continue
        outputs[d["name"]] = dequantize(v, d) if args.dequantize else v
    common.write_npz(args.output, feeds, outputs, args, notes)


if __name__ == "__main__":
    common.run_main(main)
