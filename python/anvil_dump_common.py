"""Shared parts of the anvil_dump_*.py reference dumpers: command line, inputs, .npz writing.

Every dumper runs a model in its own framework and writes one .npz holding the model's inputs
and every layer's output, keyed by the names `anvil verify` looks up (docs/verifying.md):

    Keras       layer name ("conv1"; "name:i" for output i > 0 of a multi-output layer)
    TensorFlow  GraphDef node name ("dense/BiasAdd"; "node:i" for output i > 0)
    TFLite      tensor name
    Caffe       blob name (top)
    ONNX        value name (PyTorch: the names of the exported ONNX graph)

Inputs are written too, under the input names, so that `anvil verify MODEL --reference
ref.npz` runs on exactly the same input (it takes missing --input values from the reference).

Works with Python 3.7+ and NumPy 1.16+ (Debian bullseye's Keras and Caffe run on Python 3.9).
"""
import argparse
import os
import sys
from collections import OrderedDict

import numpy as np

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".pgm", ".ppm", ".webp")


class DumpError(Exception):
    """A mistake in the command line or the files given (printed without a traceback)."""


def output_key(name, index):
    """The reference key of output `index` of the layer/node `name`: "name", then "name:1"..."""
    return name if index == 0 else "%s:%d" % (name, index)


def tensorflow_key(tensor_name):
    """TensorFlow tensor "node:0" -> "node"; "node:1" stays (anvil also accepts "node:0")."""
    return tensor_name[:-2] if tensor_name.endswith(":0") else tensor_name


def make_parser(description, model_args, default_layout):
    """An argparse parser with the options every dumper shares.

    model_args: [(name, help)] positional arguments naming the model file(s).
    default_layout: "nchw" or "nhwc", the layout images are fed in (the framework's own).
    """
    p = argparse.ArgumentParser(description=description,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    for name, help_text in model_args:
        p.add_argument(name, help=help_text)
    p.add_argument("-i", "--input", action="append", default=[], metavar="[NAME=]FILE",
                   help="an input: .npy, .npz (arrays by input name) or an image; NAME may be "
                        "left out when the model has one input (repeatable)")
    p.add_argument("-o", "--output", required=True, metavar="REF.npz",
                   help="the .npz to write (inputs and every layer's output)")
    p.add_argument("--no-inputs", action="store_true",
                   help="do not store the inputs in the .npz")
    p.add_argument("--quiet", action="store_true", help="print only the summary line")
    img = p.add_argument_group("image inputs (applied as ((pixel / divide) - mean) * scale)")
    img.add_argument("--divide", type=float, default=1.0)
    img.add_argument("--mean", default=None, help="one value or one per channel: a,b,c")
    img.add_argument("--scale", type=float, default=1.0)
    img.add_argument("--bgr", action="store_true", help="feed colour images in BGR order")
    img.add_argument("--layout", choices=("nchw", "nhwc"), default=default_layout,
                     help="layout of image inputs (default: %(default)s)")
    return p


def split_input_spec(spec):
    """"NAME=FILE" -> (NAME, FILE); "FILE" -> (None, FILE). A '=' inside a path that exists is
    part of the path."""
    if "=" in spec and not os.path.exists(spec):
        name, path = spec.split("=", 1)
        return name, path
    return None, spec


def load_image(path, shape, args):
    """An image as a float32 batch of one, laid out and normalized as the options say.

    shape: the model input's shape (None entries for free dims) or None; gives the channel
    count (1: grey, else RGB) and the size the image is resized to (bilinear, PIL).
    """
    try:
        from PIL import Image
    except ImportError:
        raise DumpError("%s: reading images needs Pillow (python3-pil); give a .npy instead"
                        % path)
    channels, size = 3, None
    if shape is not None and len(shape) == 4:
        if args.layout == "nchw":
            c, h, w = shape[1], shape[2], shape[3]
        else:
            h, w, c = shape[1], shape[2], shape[3]
        if c in (1, 3):
            channels = c
        if h and w:
            size = (int(w), int(h))
    img = Image.open(path).convert("L" if channels == 1 else "RGB")
    if size is not None and img.size != size:
        img = img.resize(size, Image.BILINEAR)
    a = np.asarray(img, dtype=np.float32)
    if a.ndim == 2:
        a = a[:, :, None]
    if args.bgr and a.shape[2] == 3:
        a = a[:, :, ::-1]
    a = a / np.float32(args.divide)
    if args.mean:
        mean = np.array([float(v) for v in args.mean.split(",")], dtype=np.float32)
        if mean.size not in (1, a.shape[2]):
            raise DumpError("--mean has %d values for %d channels" % (mean.size, a.shape[2]))
        a = a - mean
    a = a * np.float32(args.scale)
    if args.layout == "nchw":
        a = a.transpose(2, 0, 1)
    return np.ascontiguousarray(a[None], dtype=np.float32)


def load_inputs(args, input_names, input_shapes=None):
    """The arrays given with --input, keyed by model input name (an OrderedDict in the model's
    input order). input_shapes: {name: shape} for resizing images (optional)."""
    input_shapes = input_shapes or {}
    feeds = {}
    for spec in args.input:
        name, path = split_input_spec(spec)
        if not os.path.exists(path):
            raise DumpError("input file not found: %s" % path)
        low = path.lower()
        if low.endswith(".npz"):
            with np.load(path) as z:
                keys = list(z.keys()) if name is None else [name]
                for k in keys:
                    if k not in z:
                        raise DumpError("%s has no array %r (it has: %s)"
                                        % (path, k, ", ".join(z.keys())))
                    if k in input_names:
                        feeds[k] = z[k]
            continue
        if name is None:
            if len(input_names) != 1:
                raise DumpError("the model has %d inputs (%s): give --input NAME=FILE"
                                % (len(input_names), ", ".join(input_names)))
            name = input_names[0]
        if name not in input_names:
            raise DumpError("the model has no input %r (inputs: %s)"
                            % (name, ", ".join(input_names)))
        if low.endswith(".npy"):
            feeds[name] = np.load(path)
        elif low.endswith(IMAGE_EXTENSIONS):
            feeds[name] = load_image(path, input_shapes.get(name), args)
        else:
            raise DumpError("%s: not a .npy, .npz or image file" % path)
    missing = [n for n in input_names if n not in feeds]
    if missing:
        raise DumpError("no value for input(s) %s: give --input NAME=FILE" % ", ".join(missing))
    return OrderedDict((n, feeds[n]) for n in input_names)


def write_npz(path, inputs, outputs, args, notes=()):
    """Writes inputs (unless --no-inputs) and outputs into one .npz and says what it wrote.

    A name present in both keeps the output's value. Keys are the names as given (np.load
    gives them back unchanged; "/" and ":" are fine inside an .npz)."""
    arrays = OrderedDict()
    if not args.no_inputs:
        for k, v in inputs.items():
            arrays[k] = np.asarray(v)
    for k, v in outputs.items():
        arrays[k] = np.asarray(v)
    if not path.endswith(".npz"):
        path += ".npz"  # what np.savez would do anyway; print the real name
    d = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(d):
        os.makedirs(d)
    np.savez(path, **arrays)
    if not args.quiet:
        for k, v in arrays.items():
            tag = "input " if k in inputs and k not in outputs else ""
            print("  %s%s %s %s" % (tag, k, tuple(v.shape), v.dtype))
        for n in notes:
            print("note: " + n)
    n_in = 0 if args.no_inputs else len(inputs)
    print("wrote %d arrays (%d inputs, %d layer outputs) to %s"
          % (len(arrays), n_in, len(arrays) - n_in, path))
    return path


def run_main(main):
    """Runs main(); DumpError becomes a one-line message and exit code 2."""
    try:
        sys.exit(main() or 0)
    except DumpError as e:
        print("%s: error: %s" % (os.path.basename(sys.argv[0]), e), file=sys.stderr)
        sys.exit(2)
