#!/usr/bin/python3
"""Trains the Keras demo model with real Keras 2.3.1 (Theano backend) and writes models/demo/keras/.

Run by hand, never at build time. Keras 2.3.1 and Theano 1.0.5 live in the Debian bullseye
chroot made by ../shared/fixtures/gen/make-chroot.sh (no scikit-learn there), so:

    # host: the digits data set, split like the ONNX demo
    /usr/bin/python3 python/export_demo_digits.py $CHROOT/tmp/w/digits.npz
    cp python/make_demo_keras.py $CHROOT/tmp/w/
    mount -t proc proc $CHROOT/proc
    chroot $CHROOT env HOME=/tmp/w KERAS_BACKEND=theano THEANO_FLAGS=floatX=float32 \\
        /usr/bin/python3 /tmp/w/make_demo_keras.py --data /tmp/w/digits.npz --out /tmp/w/keras
    cp -r $CHROOT/tmp/w/keras models/demo/

A small CNN, channels_last, on 8x8x1 digits scaled to [0, 1]:
    Conv2D(8, 3, same) -> BatchNormalization -> relu -> MaxPooling2D(2) -> Conv2D(16, 3, relu)
    -> Flatten -> Dense(10, softmax)
Input layer `image` (batch, 8, 8, 1), output layer `probs` (batch, 10). Everything is seeded.
The Theano backend stores convolution kernels spatially flipped and pads `same`
symmetrically; the .h5 says so (its `backend` attribute) and Anvil's Keras importer honours it.
"""
import argparse
import os
import platform

import numpy as np

SEED = 0
BATCH = 8  # the bundled input batch: the first 8 test digits
EPOCHS = 40


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, help=".npz from python/export_demo_digits.py")
    ap.add_argument("--out", required=True, help="output directory (becomes models/demo/keras)")
    ap.add_argument("--epochs", type=int, default=EPOCHS)
    args = ap.parse_args()

    np.random.seed(SEED)  # Keras's initializers (Theano backend) and fit's shuffling draw from it
    import keras
    import theano
    from keras import backend as K
    from keras.layers import (Activation, BatchNormalization, Conv2D, Dense, Flatten, Input,
                              MaxPooling2D)
    from keras.models import Model, load_model
    assert K.backend() == "theano", K.backend()
    K.set_image_data_format("channels_last")

    d = np.load(args.data)
    x_train = d["x_train"][..., None].astype(np.float32)  # (1347, 8, 8, 1) NHWC
    x_test = d["x_test"][..., None].astype(np.float32)
    y_train, y_test = d["y_train"], d["y_test"]
    sklearn_version = str(d["sklearn_version"])

    image = Input((8, 8, 1), name="image")
    x = Conv2D(8, 3, padding="same", name="conv1")(image)
    x = BatchNormalization(name="bn1")(x)
    x = Activation("relu", name="relu1")(x)
    x = MaxPooling2D(2, name="pool")(x)
    x = Conv2D(16, 3, activation="relu", name="conv2")(x)
    x = Flatten(name="flatten")(x)
    probs = Dense(10, activation="softmax", name="probs")(x)
    model = Model(image, probs, name="digits_cnn")
    model.compile(optimizer=keras.optimizers.Adam(lr=0.003),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x_train, y_train, batch_size=64, epochs=args.epochs, shuffle=True, verbose=2)

    test_probs = model.predict(x_test)
    accuracy = float((test_probs.argmax(1) == y_test).mean())
    print("test accuracy: %.4f on %d test digits" % (accuracy, len(y_test)))
    if accuracy < 0.95:
        raise SystemExit("accuracy below 95%: not writing the model")

    os.makedirs(os.path.join(args.out, "inputs"), exist_ok=True)
    os.makedirs(os.path.join(args.out, "expected"), exist_ok=True)
    batch = np.ascontiguousarray(x_test[:BATCH]).astype(np.float32)
    labels = y_test[:BATCH]
    expected = model.predict(batch).astype(np.float32)
    pooled = Model(image, model.get_layer("pool").output).predict(batch).astype(np.float32)

    h5 = os.path.join(args.out, "digits_cnn.h5")
    model.save(h5, include_optimizer=False)
    # The saved file must give back the same numbers.
    again = load_model(h5).predict(batch)
    assert np.array_equal(again, expected), float(np.abs(again - expected).max())

    np.save(os.path.join(args.out, "inputs", "image.npy"), batch)
    np.save(os.path.join(args.out, "expected", "probs.npy"), expected)
    np.save(os.path.join(args.out, "expected", "pool.npy"), pooled)
    with open(os.path.join(args.out, "labels.txt"), "w") as f:
        f.write("".join("%d\n" % int(v) for v in labels))

    nparams = model.count_params()
    ntrain = int(sum(K.count_params(w) for w in model.trainable_weights))
    pred = " ".join(str(int(v)) for v in expected.argmax(1))
    readme = """# Keras demo model: digits CNN

Trained with real Keras by `python/make_demo_keras.py` (seeded, run by hand inside the Debian
bullseye chroot of `../shared/fixtures/gen/make-chroot.sh`; see the script's docstring),
never at build time.

- Data: scikit-learn's bundled digits data set, the same split as the ONNX demo
  (`train_test_split(test_size=0.25, random_state=0, stratify=y)`, exported on the host by
  `python/export_demo_digits.py` with scikit-learn {skl}), pixel values 0..16 divided by 16.
- Network (functional, channels_last): `image` (8, 8, 1) -> Conv2D(8, 3, padding="same")
  `conv1` -> BatchNormalization `bn1` -> Activation relu `relu1` -> MaxPooling2D(2) `pool` ->
  Conv2D(16, 3, relu) `conv2` -> Flatten `flatten` -> Dense(10, softmax) `probs`;
  {nparams} parameters ({ntrain} trainable, {nnon} non-trainable: the batch norm's moving
  mean and variance), as Keras's `model.summary()` counts them.
- Training: Adam (lr 0.003), sparse categorical cross-entropy, batch 64, {epochs} epochs,
  `np.random.seed({seed})` before Keras is imported (Keras's initializers and `fit`'s shuffling
  draw from it).
- Test accuracy: {acc:.2f}% on {ntest} held-out digits.
- Made with Keras {kv} on the **Theano {tv}** backend (Debian bullseye python3-keras,
  python3-theano, `THEANO_FLAGS=floatX=float32`), NumPy {npv}, Python {pyv}; saved with
  `model.save` (no optimizer). The Theano backend stores the convolution kernels spatially
  flipped and pads `same` symmetrically; the file's `backend` attribute says `theano` and
  Anvil's Keras importer honours it.

Files:

| file | content |
|---|---|
| `digits_cnn.h5` | the model (Keras 2 HDF5 full model): input layer `image` (batch, 8, 8, 1) NHWC float32 in [0, 1], output layer `probs` (batch, 10) |
| `inputs/image.npy` | the first {batch} test digits, shape ({batch}, 8, 8, 1) float32 |
| `expected/probs.npy` | Keras's own `model.predict` for `inputs/image.npy`, shape ({batch}, 10) float32 |
| `expected/pool.npy` | Keras's output of layer `pool` for the same batch, shape ({batch}, 4, 4, 8) (NHWC) |
| `labels.txt` | the true labels of those {batch} digits, one per line: {labels} |

Keras predicts {pred} for `inputs/image.npy`:

    anvil run models/demo/keras/digits_cnn.h5 --input models/demo/keras/inputs/image.npy
""".format(skl=sklearn_version, nparams=nparams, ntrain=ntrain, nnon=nparams - ntrain,
           epochs=args.epochs, seed=SEED, acc=accuracy * 100, ntest=len(y_test),
           kv=keras.__version__, tv=theano.__version__, npv=np.__version__,
           pyv=platform.python_version(), batch=BATCH,
           labels=" ".join(str(int(v)) for v in labels), pred=pred)
    with open(os.path.join(args.out, "README.md"), "w") as f:
        f.write(readme)
    print("labels:   ", " ".join(str(int(v)) for v in labels))
    print("predicted:", pred)
    print("wrote", args.out)


if __name__ == "__main__":
    main()
