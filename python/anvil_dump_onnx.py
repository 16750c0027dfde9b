#!/usr/bin/python3
"""Dumps every value of an ONNX model, run by ONNX Runtime, into an .npz for `anvil verify`.

    python3 anvil_dump_onnx.py model.onnx --input image=x.npy -o ref.npz
    anvil verify model.onnx --reference ref.npz

Needs the `onnx` and `onnxruntime` Python packages. Every node output of the main graph is
added as a graph output (typed by ONNX shape inference where it can), the model runs once with
graph optimizations off (so that no value is fused away or computed differently from the plain
graph; --optimize turns them on), and each value is written under its ONNX value name, the
inputs under theirs. Values computed from no graph input (Constant nodes, Identity copies of
weights as PyTorch's exporter writes them) are weights and left out unless --constants. Values inside subgraphs (If/Loop/Scan bodies) and non-tensor values
(sequences, maps) are not dumped. Images: NCHW.
"""
import os
import sys
from collections import OrderedDict

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import anvil_dump_common as common  # noqa: E402


def _np_dtype(elem_type):
    import onnx
    try:
        return onnx.helper.tensor_dtype_to_np_dtype(elem_type)  # onnx >= 1.13
    except AttributeError:
        return onnx.mapping.TENSOR_TYPE_TO_NP_TYPE[elem_type]


def graph_inputs(model):
    """[(name, numpy dtype, shape)] of the real inputs (initializers excluded); unknown dims
    are None."""
    inits = {t.name for t in model.graph.initializer}
    out = []
    for vi in model.graph.input:
        if vi.name in inits:
            continue
        tt = vi.type.tensor_type
        shape = tuple(d.dim_value if d.HasField("dim_value") else None for d in tt.shape.dim)
        out.append((vi.name, _np_dtype(tt.elem_type) if tt.elem_type else None, shape))
    return out


def with_every_output(model, constants=False):
    """A copy of `model` whose graph outputs are its own outputs followed by every other node
    output, in node order; returns (model, names of all outputs in that order). Values that
    depend on no graph input (Constant nodes, and nodes computed from initializers and
    constants only, such as the exporter's Identity copies of shared weights) are weights, not
    layer outputs: they are included only when `constants`."""
    import onnx
    m = onnx.ModelProto()
    m.CopyFrom(model)
    try:
        typed = {vi.name: vi for vi in onnx.shape_inference.infer_shapes(m).graph.value_info}
    except Exception:  # shape inference is only a help here
        typed = {}
    have = [o.name for o in m.graph.output]
    names = list(have)
    seen = set(have) | {i.name for i in m.graph.input}
    const = {t.name for t in m.graph.initializer}
    for node in m.graph.node:
        has_subgraph = any(a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS)
                           for a in node.attribute)
        if all(not i or i in const for i in node.input) and not has_subgraph:
            const.update(node.output)  # no graph input reaches it
            if not constants:
                continue
        for o in node.output:
            if not o or o in seen:
                continue
            seen.add(o)
            vi = typed.get(o)
            if vi is not None and vi.type.WhichOneof("value") not in (None, "tensor_type"):
                continue  # sequence/map/optional values
            names.append(o)
            if vi is not None:
                m.graph.output.append(vi)
            else:
                m.graph.output.append(onnx.ValueInfoProto(name=o))
    return m, names


def dump_onnx(model, feeds, optimize=False, constants=False):
    """Runs `model` (ModelProto or path) with ONNX Runtime on `feeds` ({name: array}); returns
    an OrderedDict of every node output (graph outputs first, then node order)."""
    import onnx
    import onnxruntime as ort
    if not isinstance(model, onnx.ModelProto):
        model = onnx.load(model)
    m, names = with_every_output(model, constants)
    so = ort.SessionOptions()
    if not optimize:
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"])
    values = sess.run(names, dict(feeds))
    order = {}
    for i, node in enumerate(model.graph.node):  # graph order for the .npz
        for o in node.output:
            order.setdefault(o, i)
    pairs = sorted(zip(names, values), key=lambda p: order.get(p[0], len(order)))
    return OrderedDict(pairs)


def cast_feeds(model, feeds):
    """Feeds converted to the dtypes the graph declares (ONNX Runtime does not convert)."""
    out = OrderedDict()
    for name, dtype, _ in graph_inputs(model):
        a = feeds[name]
        out[name] = a.astype(dtype) if dtype is not None and a.dtype != dtype else a
    return out


def main():
    p = common.make_parser(__doc__, [("model", "the .onnx file")], "nchw")
    p.add_argument("--optimize", action="store_true",
                   help="let ONNX Runtime optimize the graph (off by default)")
    p.add_argument("--constants", action="store_true",
                   help="also write values computed from no graph input (weights)")
    args = p.parse_args()
    import onnx
    if not os.path.exists(args.model):
        raise common.DumpError("file not found: %s" % args.model)
    model = onnx.load(args.model)
    ins = graph_inputs(model)
    feeds = common.load_inputs(args, [n for n, _, _ in ins], {n: s for n, _, s in ins})
    feeds = cast_feeds(model, feeds)
    outputs = dump_onnx(model, feeds, args.optimize, args.constants)
    import onnxruntime as ort
    common.write_npz(args.output, feeds, outputs, args,
                     ["ONNX Runtime %s, graph optimizations %s"
                      % (ort.__version__, "on" if args.optimize else "off")])


if __name__ == "__main__":
    common.run_main(main)
