#!/usr/bin/python3
"""Trains the Caffe demo model with real BVLC Caffe (CPU) and writes models/demo/caffe/.

Run by hand, never at build time. pycaffe lives in the Debian bullseye chroot made by
../shared/fixtures/gen/make-chroot.sh (no scikit-learn there), so:

    # host: the digits data set, split like the ONNX demo
    /usr/bin/python3 python/export_demo_digits.py $CHROOT/tmp/w/digits.npz
    cp python/make_demo_caffe.py $CHROOT/tmp/w/
    mount -t proc proc $CHROOT/proc
    chroot $CHROOT env HOME=/tmp/w /usr/bin/python3 /tmp/w/make_demo_caffe.py \\
        --data /tmp/w/digits.npz --out /tmp/w/caffe
    cp -r $CHROOT/tmp/w/caffe models/demo/

The nets are written with caffe.NetSpec in Caffe's usual style (BatchNorm + Scale and ReLU
in place on the convolution's blob):
    data (N, 1, 8, 8) -> Convolution(8, 3x3, pad 1, no bias) conv1 -> BatchNorm bn1 ->
    Scale(bias) scale1 -> ReLU relu1 -> Pooling(MAX, 2, stride 2) pool1 ->
    Convolution(16, 3x3) conv2 -> ReLU relu2 -> InnerProduct(10) ip -> Softmax prob
Training net: HDF5Data (an .h5 written here with h5py; HDF5Data has no transform_param, so
the pixel values 0..16 are scaled by 1/16 when the .h5 is written, the job
`transform_param { scale: 0.0625 }` does in a Data layer) and SoftmaxWithLoss; trained by
`caffe.get_solver` (SGD with momentum) on the CPU. Deploy net: an Input layer `data` and
Softmax `prob`. Everything is seeded (numpy, caffe.set_random_seed, solver random_seed).
"""
import argparse
import os
import platform
import tempfile

os.environ.setdefault("GLOG_minloglevel", "2")
import numpy as np  # noqa: E402

SEED = 0
BATCH = 8  # the bundled input batch: the first 8 test digits
MAX_ITER = 3000  # batch 64: about 140 epochs of the 1347 training digits
SCALE = 1.0 / 16.0


def net_spec(train, source=None):
    import caffe
    from caffe import layers as L, params as P
    n = caffe.NetSpec()
    if train:
        n.data, n.label = L.HDF5Data(source=source, batch_size=64, shuffle=True, ntop=2)
    else:
        # Anvil takes the declared shape (Caffe itself reshapes at run time): the batch of 8
        # bundled digits.
        n.data = L.Input(shape=dict(dim=[BATCH, 1, 8, 8]))
    xavier = dict(type="xavier")
    zero = dict(type="constant", value=0)
    n.conv1 = L.Convolution(n.data, num_output=8, kernel_size=3, pad=1, bias_term=False,
                            weight_filler=xavier)
    n.bn1 = L.BatchNorm(n.conv1, in_place=True)  # TRAIN: batch statistics; TEST: stored ones
    n.scale1 = L.Scale(n.conv1, bias_term=True, in_place=True)
    n.relu1 = L.ReLU(n.conv1, in_place=True)
    n.pool1 = L.Pooling(n.conv1, pool=P.Pooling.MAX, kernel_size=2, stride=2)
    n.conv2 = L.Convolution(n.pool1, num_output=16, kernel_size=3, weight_filler=xavier,
                            bias_filler=zero)
    n.relu2 = L.ReLU(n.conv2, in_place=True)
    n.ip = L.InnerProduct(n.conv2, num_output=10, weight_filler=xavier, bias_filler=zero)
    if train:
        n.loss = L.SoftmaxWithLoss(n.ip, n.label)
    else:
        n.prob = L.Softmax(n.ip)
    return 'name: "digits_cnn"\n' + str(n.to_proto())


def forward(net, x):
    net.blobs["data"].reshape(*x.shape)
    net.reshape()
    net.blobs["data"].data[...] = x
    net.forward()
    return net.blobs["prob"].data.copy()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, help=".npz from python/export_demo_digits.py")
    ap.add_argument("--out", required=True, help="output directory (becomes models/demo/caffe)")
    ap.add_argument("--max-iter", type=int, default=MAX_ITER)
    args = ap.parse_args()

    import caffe
    import h5py
    from caffe.proto import caffe_pb2
    np.random.seed(SEED)
    caffe.set_mode_cpu()
    caffe.set_random_seed(SEED)

    d = np.load(args.data)
    # The .npz holds value / 16; Caffe's raw digits are value 0..16 and the .h5 stores them
    # scaled (see the docstring), i.e. the same [0, 1] values.
    raw_train = np.rint(d["x_train"] * 16.0)
    raw_test = np.rint(d["x_test"] * 16.0)
    x_train = (raw_train * SCALE).astype(np.float32)[:, None]  # (1347, 1, 8, 8) NCHW
    x_test = (raw_test * SCALE).astype(np.float32)[:, None]
    y_train, y_test = d["y_train"], d["y_test"]
    sklearn_version = str(d["sklearn_version"])

    tmp = tempfile.mkdtemp(prefix="digits_caffe_")
    h5 = os.path.join(tmp, "train.h5")
    with h5py.File(h5, "w") as f:
        f.create_dataset("data", data=x_train)
        f.create_dataset("label", data=y_train.astype(np.float32))
    with open(os.path.join(tmp, "train_h5.txt"), "w") as f:
        f.write(h5 + "\n")
    train_proto = os.path.join(tmp, "train.prototxt")
    with open(train_proto, "w") as f:
        f.write(net_spec(True, os.path.join(tmp, "train_h5.txt")))
    deploy_txt = net_spec(False)
    deploy_tmp = os.path.join(tmp, "deploy.prototxt")
    with open(deploy_tmp, "w") as f:
        f.write(deploy_txt)

    s = caffe_pb2.SolverParameter()
    s.train_net = train_proto
    s.type = "SGD"
    s.base_lr = 0.05
    s.momentum = 0.9
    s.weight_decay = 5e-4
    s.lr_policy = "step"
    s.gamma = 0.1
    s.stepsize = int(args.max_iter * 2 / 3)
    s.max_iter = args.max_iter
    s.display = 500
    s.snapshot = 0
    s.snapshot_after_train = False
    s.random_seed = SEED
    s.solver_mode = caffe_pb2.SolverParameter.CPU
    solver_path = os.path.join(tmp, "solver.prototxt")
    with open(solver_path, "w") as f:
        f.write(str(s))
    solver = caffe.get_solver(solver_path)
    solver.solve()
    trained = os.path.join(tmp, "trained.caffemodel")
    solver.net.save(trained)

    # The deploy net takes the trained weights by layer name (Caffe's CopyTrainedLayersFrom).
    net = caffe.Net(deploy_tmp, trained, caffe.TEST)
    test_probs = forward(net, x_test)
    accuracy = float((test_probs.argmax(1) == y_test).mean())
    print("test accuracy: %.4f on %d test digits" % (accuracy, len(y_test)))
    if accuracy < 0.95:
        raise SystemExit("accuracy below 95%: not writing the model")

    os.makedirs(os.path.join(args.out, "inputs"), exist_ok=True)
    os.makedirs(os.path.join(args.out, "expected"), exist_ok=True)
    batch = np.ascontiguousarray(x_test[:BATCH]).astype(np.float32)
    labels = y_test[:BATCH]
    expected = forward(net, batch).astype(np.float32)
    pooled = net.blobs["pool1"].data.copy().astype(np.float32)
    proto_out = os.path.join(args.out, "deploy.prototxt")
    with open(proto_out, "w") as f:
        f.write(deploy_txt)
    model_out = os.path.join(args.out, "digits.caffemodel")
    net.save(model_out)
    del net
    # The saved pair must give back the same numbers.
    again = forward(caffe.Net(proto_out, model_out, caffe.TEST), batch)
    assert np.array_equal(again, expected), float(np.abs(again - expected).max())

    np.save(os.path.join(args.out, "inputs", "data.npy"), batch)
    np.save(os.path.join(args.out, "expected", "prob.npy"), expected)
    np.save(os.path.join(args.out, "expected", "pool1.npy"), pooled)
    with open(os.path.join(args.out, "labels.txt"), "w") as f:
        f.write("".join("%d\n" % int(v) for v in labels))

    nparams = 0
    counts = []
    for lname, blobs in caffe.Net(proto_out, model_out, caffe.TEST).params.items():
        c = int(sum(b.data.size for b in blobs))
        counts.append("%s %d" % (lname, c))
        nparams += c
    pred = " ".join(str(int(v)) for v in expected.argmax(1))
    readme = """# Caffe demo model: digits CNN

Trained with real Caffe by `python/make_demo_caffe.py` (seeded, run by hand inside the Debian
bullseye chroot of `../shared/fixtures/gen/make-chroot.sh`; see the script's docstring),
never at build time.

- Data: scikit-learn's bundled digits data set, the same split as the ONNX demo
  (`train_test_split(test_size=0.25, random_state=0, stratify=y)`, exported on the host by
  `python/export_demo_digits.py` with scikit-learn {skl}).
- Input scaling: pixel values 0..16 times **0.0625** (= 1/16), what a Caffe Data layer's
  `transform_param {{ scale: 0.0625 }}` does. The training net reads an HDF5Data file,
  which has no `transform_param`, so the scaled values were written into it; the deploy
  net's `data` input takes the scaled values, (N, 1, 8, 8) float32 in [0, 1] (NCHW). For
  the 0..255 PNGs of `../digits/`, `anvil run ... --divide 255` gives the same range.
- Network (Caffe's usual style, BatchNorm + Scale and ReLU in place on the conv blob):
  `data` -> Convolution(8, 3x3, pad 1, no bias) `conv1` -> BatchNorm `bn1` ->
  Scale(bias) `scale1` -> ReLU `relu1` -> Pooling(MAX, 2, stride 2) `pool1` ->
  Convolution(16, 3x3) `conv2` -> ReLU `relu2` -> InnerProduct(10) `ip` -> Softmax `prob`;
  {nparams} stored numbers ({counts}; BatchNorm stores mean,
  variance and the moving-average factor).
- Training: `caffe.get_solver` SGD, base_lr 0.05, momentum 0.9, weight_decay 5e-4, lr x0.1
  after {step} iterations, {iters} iterations of batch 64 (HDF5Data, shuffle) with
  SoftmaxWithLoss on the CPU; seeds: numpy {seed}, `caffe.set_random_seed({seed})`,
  solver `random_seed: {seed}`.
- Test accuracy: {acc:.2f}% on {ntest} held-out digits (the deploy net, BatchNorm on its
  stored statistics).
- Made with BVLC Caffe 1.0.0+git20180821 (Debian bullseye python3-caffe, CPU), NumPy {npv},
  Python {pyv}.

Files:

| file | content |
|---|---|
| `deploy.prototxt` | the deploy net: Input `data` ({batch}, 1, 8, 8), output blob `prob` ({batch}, 10) (Anvil takes the declared batch; edit `dim: {batch}` to run another batch size) |
| `digits.caffemodel` | the trained weights (`Net.save` of the deploy net) |
| `inputs/data.npy` | the first {batch} test digits, shape ({batch}, 1, 8, 8) float32, already scaled |
| `expected/prob.npy` | Caffe's own `net.forward()` for `inputs/data.npy`, shape ({batch}, 10) float32 |
| `expected/pool1.npy` | Caffe's blob `pool1` for the same batch, shape ({batch}, 8, 4, 4) |
| `labels.txt` | the true labels of those {batch} digits, one per line: {labels} |

Caffe predicts {pred} for `inputs/data.npy`:

    anvil run models/demo/caffe/deploy.prototxt models/demo/caffe/digits.caffemodel \\
        --input models/demo/caffe/inputs/data.npy
""".format(skl=sklearn_version, nparams=nparams, counts=", ".join(counts),
           step=s.stepsize, iters=args.max_iter, seed=SEED, acc=accuracy * 100,
           ntest=len(y_test), npv=np.__version__, pyv=platform.python_version(),
           batch=BATCH, labels=" ".join(str(int(v)) for v in labels), pred=pred)
    with open(os.path.join(args.out, "README.md"), "w") as f:
        f.write(readme)
    print("labels:   ", " ".join(str(int(v)) for v in labels))
    print("predicted:", pred)
    print("wrote", args.out)


if __name__ == "__main__":
    main()
