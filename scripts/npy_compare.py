#!/usr/bin/python3
"""Compares two .npy files: exit 0 when shapes match and max|got - expected| <= atol.

    /usr/bin/python3 scripts/npy_compare.py GOT.npy EXPECTED.npy [--atol 1e-4] [--labels L.txt]

With --labels (one integer per line), also prints the predicted classes (argmax of each row
of GOT) next to the true labels. Exit codes: 0 match, 1 mismatch, 2 bad input.
"""
import argparse
import sys

import numpy as np


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("got")
    ap.add_argument("expected")
    ap.add_argument("--atol", type=float, default=1e-4)
    ap.add_argument("--labels")
    args = ap.parse_args()
    try:
        got = np.load(args.got)
        ref = np.load(args.expected)
    except (OSError, ValueError) as e:
        print(f"npy_compare: {e}", file=sys.stderr)
        return 2
    if got.shape != ref.shape:
        print(f"MISMATCH: shape {got.shape} != expected {ref.shape}")
        return 1
    diff = float(np.max(np.abs(got.astype(np.float64) - ref.astype(np.float64)))) if got.size else 0.0
    ok = bool(np.isfinite(diff)) and diff <= args.atol
    print(f"{'OK' if ok else 'MISMATCH'}: max |got - expected| = {diff:.3g} "
          f"(tolerance {args.atol:g}), shape {got.shape}, {got.dtype}")
    if args.labels:
        labels = [int(line) for line in open(args.labels) if line.strip()]
        pred = got.reshape(got.shape[0], -1).argmax(axis=1).tolist()
        print("predicted digits:", " ".join(map(str, pred)))
        print("true labels:     ", " ".join(map(str, labels)))
        right = sum(int(p == t) for p, t in zip(pred, labels))
        print(f"{right}/{len(labels)} correct")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
