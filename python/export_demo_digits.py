#!/usr/bin/python3
"""Exports scikit-learn's digits data set, split as the ONNX demo splits it, into one .npz.

The Keras and Caffe demo scripts (python/make_demo_keras.py, python/make_demo_caffe.py) run
inside the Debian bullseye chroot of ../shared/fixtures/gen/make-chroot.sh, which has real
Keras 2.3.1 and BVLC Caffe but no scikit-learn; this script runs on the host (Debian's
python3-sklearn) and hands them the data:

    /usr/bin/python3 python/export_demo_digits.py /var/tmp/anvil-chroot/tmp/w/digits.npz

The file holds x_train (1347, 8, 8), y_train (1347,), x_test (450, 8, 8), y_test (450,):
images float32 scaled to [0, 1] (value / 16), labels int64; the split is
`train_test_split(test_size=0.25, random_state=0, stratify=y)` exactly as in
python/make_demo_onnx.py, so all three demo models share their test digits.
"""
import argparse

import numpy as np
import sklearn
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

SEED = 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", help="the .npz to write")
    args = ap.parse_args()
    digits = load_digits()
    x = digits.images.astype(np.float32) / 16.0
    y = digits.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=0.25, random_state=SEED, stratify=y)
    np.savez(args.out, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test,
             sklearn_version=np.array(sklearn.__version__))
    print(f"wrote {args.out}: {len(y_train)} train, {len(y_test)} test digits "
          f"(scikit-learn {sklearn.__version__}); first test labels {y_test[:8].tolist()}")


if __name__ == "__main__":
    main()
