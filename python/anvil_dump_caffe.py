#!/usr/bin/python3
"""Dumps every blob of a Caffe net after one forward pass into an .npz for `anvil verify`.

    python3 anvil_dump_caffe.py deploy.prototxt weights.caffemodel --input data=x.npy -o ref.npz
    anvil verify deploy.prototxt weights.caffemodel --reference ref.npz

Needs pycaffe (Debian: python3-caffe-cpu). Input blobs are reshaped to the given arrays (any
batch), the net runs forward once in the TEST phase, and every blob of `net.blobs` is written
under its name: the inputs, then each layer's top in layer order (not the copies made by the
Split layers Caffe inserts where a blob feeds several layers). A blob written in place
(top == bottom: BatchNorm, Scale, ReLU... on the same blob) holds the value of the LAST layer
that writes it; the dumper lists such blobs, and anvil compares them with its output of that
last layer. Images: NCHW, and Caffe nets usually want --bgr.
"""
import os
import sys
from collections import OrderedDict

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import anvil_dump_common as common  # noqa: E402


def in_place_notes(net):
    """One note per blob that layers overwrite in place, naming the layer whose output it holds."""
    writers = OrderedDict()
    for layer, tops in net.top_names.items():
        bottoms = set(net.bottom_names.get(layer, []))
        for t in tops:
            if t in bottoms:
                writers.setdefault(t, []).append(layer)
    return ["blob %s is written in place by %s: the dump holds the output of %s"
            % (b, ", ".join(ls), ls[-1]) for b, ls in writers.items()]


def auto_split_blobs(net):
    """Blobs of the Split layers Caffe inserts where a blob feeds several layers
    ("data_conv1_0_split_1"): copies of that blob, not in the prototxt, so not dumped."""
    out = set()
    for name, layer in zip(net._layer_names, net.layers):
        if layer.type == "Split" and name.endswith("_split"):
            out.update(t for t in net.top_names[name] if t.startswith(name + "_"))
    return out


def main():
    p = common.make_parser(__doc__, [("prototxt", "the net (deploy .prototxt)"),
                                     ("caffemodel", "the trained weights (.caffemodel)")], "nchw")
    p.add_argument("--gpu", type=int, default=None, metavar="ID", help="run on this GPU")
    args = p.parse_args()

    os.environ.setdefault("GLOG_minloglevel", "2")  # before caffe is imported: no log spam
    import caffe
    if args.gpu is None:
        caffe.set_mode_cpu()
    else:
        caffe.set_device(args.gpu)
        caffe.set_mode_gpu()
    for f in (args.prototxt, args.caffemodel):
        if not os.path.exists(f):
            raise common.DumpError("file not found: %s" % f)
    net = caffe.Net(args.prototxt, caffe.TEST, weights=args.caffemodel)

    input_names = list(net.inputs)
    shapes = {n: tuple(net.blobs[n].data.shape) for n in input_names}
    feeds = common.load_inputs(args, input_names, shapes)
    for n, a in feeds.items():
        net.blobs[n].reshape(*a.shape)
    net.reshape()
    for n, a in feeds.items():
        net.blobs[n].data[...] = a
    net.forward()

    outputs = OrderedDict()
    splits = auto_split_blobs(net)
    for name, blob in net.blobs.items():
        if name not in feeds and name not in splits:
            outputs[name] = blob.data.copy()
    common.write_npz(args.output, feeds, outputs, args, in_place_notes(net))


if __name__ == "__main__":
    common.run_main(main)
