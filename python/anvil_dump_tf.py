#!/usr/bin/python3
"""Dumps every op output of a TensorFlow GraphDef (frozen .pb) into an .npz for `anvil verify`.

    python3 anvil_dump_tf.py frozen.pb --input input=x.npy -o ref.npz
    anvil verify frozen.pb --reference ref.npz

Needs TensorFlow (1.15 or 2.x; the graph runs through tf.compat.v1). The GraphDef (binary .pb
or text .pbtxt) is imported with no name prefix, the Placeholders are fed (by node name, with
or without ":0"), and every op output that can be fetched is fetched in one run and written
under its tensor name without ":0" ("dense/BiasAdd"; "split:1" for output 1). Not dumped:
constants and variables (weights), the fed placeholders (written as inputs), string/resource/
variant tensors, and the insides of while loops and untaken cond branches (not fetchable).
Images: NHWC.
"""
import os
import sys
from collections import OrderedDict

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import anvil_dump_common as common  # noqa: E402

SKIP_OPS = {"Const", "Placeholder", "NoOp", "Assert", "VariableV2", "Variable", "VarHandleOp",
            "ReadVariableOp", "Enter", "Exit", "Merge", "Switch", "NextIteration", "LoopCond",
            "ControlTrigger"}


def load_graph(tf, path):
    tf1 = tf.compat.v1
    gd = tf1.GraphDef()
    with open(path, "rb") as f:
        data = f.read()
    if path.lower().endswith((".pbtxt", ".txt")):
        from google.protobuf import text_format
        text_format.Parse(data.decode("utf-8"), gd)
    else:
        gd.ParseFromString(data)
    g = tf.Graph()
    with g.as_default():
        tf1.import_graph_def(gd, name="")
    return g


def fetchable_outputs(tf, g, fed):
    """[(key, tensor)] of every op output worth dumping, in the GraphDef's op order."""
    skip_dtypes = {tf.string, tf.resource, tf.variant}
    out = []
    for op in g.get_operations():
        if op.type in SKIP_OPS or op.type.startswith("TensorArray"):
            continue
        for t in op.outputs:
            if t.name in fed or t.dtype.base_dtype in skip_dtypes or not g.is_fetchable(t):
                continue
            out.append((common.tensorflow_key(t.name), t))
    return out


def main():
    p = common.make_parser(__doc__, [("model", "frozen GraphDef (.pb, or .pbtxt text)")], "nhwc")
    args = p.parse_args()
    if not os.path.exists(args.model):
        raise common.DumpError("file not found: %s" % args.model)
    import tensorflow as tf
    g = load_graph(tf, args.model)
    placeholders = [op for op in g.get_operations() if op.type == "Placeholder"]
    names = [op.name for op in placeholders]
    shapes = {}
    for op in placeholders:
        s = op.outputs[0].shape
        shapes[op.name] = tuple(s.as_list()) if s.rank is not None else None
    # Accept "x:0" for a placeholder "x" on the command line.
    args.input = [s.replace(":0=", "=", 1) for s in args.input]
    feeds = common.load_inputs(args, names, shapes)
    feed_dict = {g.get_tensor_by_name(n + ":0"): a for n, a in feeds.items()}
    fetches = fetchable_outputs(tf, g, {n + ":0" for n in names})

    notes = []
    outputs = OrderedDict()
    with tf.compat.v1.Session(graph=g) as sess:
        try:
            values = sess.run([t for _, t in fetches], feed_dict)
            outputs.update((k, v) for (k, _), v in zip(fetches, values))
        except tf.errors.OpError:
            # Some tensor cannot be computed on this input (an untaken cond branch...): fetch
            # one by one and name the ones that fail.
            failed = []
            for k, t in fetches:
                try:
                    outputs[k] = sess.run(t, feed_dict)
                except tf.errors.OpError:
                    failed.append(k)
            if failed:
                notes.append("%d tensors could not be fetched: %s%s" % (
                    len(failed), ", ".join(failed[:10]), " ..." if len(failed) > 10 else ""))
    notes.append("TensorFlow %s" % tf.__version__)
    common.write_npz(args.output, feeds, outputs, args, notes)


if __name__ == "__main__":
    common.run_main(main)
