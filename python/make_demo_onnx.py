#!/usr/bin/python3
"""Trains the bundled demo model and writes models/demo/ (run by hand, never at build time).

A small CNN on scikit-learn's bundled digits data set (8x8 grey images, values 0..16):
    Conv(8, 3x3, pad 1) -> BatchNorm -> ReLU -> MaxPool(2) -> Conv(16, 3x3) -> ReLU
    -> Flatten -> Dense(10) -> Softmax
The network takes `image` of shape (batch, 1, 8, 8) float32 with pixel values scaled to
[0, 1] (value / 16) and returns `probs` of shape (batch, 10). The batch dimension is dynamic.

Usage (Debian's packages: python3-torch, python3-sklearn, python3-numpy, python3-pil):
    /usr/bin/python3 python/make_demo_onnx.py [--out models/demo]

Everything is seeded; the outputs are committed to the repository.
"""
import argparse
import os
import platform

import numpy as np
import torch
import torch.nn as nn
from PIL import Image
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

SEED = 0
BATCH = 8  # the bundled input batch: the first 8 test digits


class DigitsCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(8)
        self.pool = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(8, 16, 3)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(16 * 2 * 2, 10)

    def forward(self, x):
        x = self.pool(torch.relu(self.bn1(self.conv1(x))))
        x = torch.relu(self.conv2(x))
        return torch.softmax(self.fc(self.flatten(x)), dim=1)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap.add_argument("--out", default=os.path.join(root, "models", "demo"))
    ap.add_argument("--epochs", type=int, default=60)
    args = ap.parse_args()

    torch.manual_seed(SEED)
    np.random.seed(SEED)
    torch.set_num_threads(1)

    digits = load_digits()
    x = (digits.images.astype(np.float32) / 16.0)[:, None, :, :]  # (1797, 1, 8, 8) in [0, 1]
    y = digits.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=0.25, random_state=SEED, stratify=y)

    model = DigitsCNN()
    opt = torch.optim.Adam(model.parameters(), lr=0.003)
    xt, yt = torch.from_numpy(x_train), torch.from_numpy(y_train)
    gen = torch.Generator().manual_seed(SEED)
    for epoch in range(args.epochs):
        model.train()
        perm = torch.randperm(len(xt), generator=gen)
        for i in range(0, len(xt), 64):
            idx = perm[i:i + 64]
            opt.zero_grad()
            # The model ends in softmax; train on its log (NLL) so the exported graph is
            # exactly what was trained.
            probs = model(xt[idx])
            loss = nn.functional.nll_loss(torch.log(probs + 1e-9), yt[idx])
            loss.backward()
            opt.step()

    model.eval()
    with torch.no_grad():
        test_probs = model(torch.from_numpy(x_test)).numpy()
    accuracy = float((test_probs.argmax(1) == y_test).mean())
    print(f"test accuracy: {accuracy:.4f} on {len(y_test)} test digits")
    if accuracy < 0.95:
        raise SystemExit("accuracy below 95%: not writing the model")

    os.makedirs(os.path.join(args.out, "inputs"), exist_ok=True)
    os.makedirs(os.path.join(args.out, "expected"), exist_ok=True)
    os.makedirs(os.path.join(args.out, "digits"), exist_ok=True)

    batch = np.ascontiguousarray(x_test[:BATCH]).astype(np.float32)
    labels = y_test[:BATCH]
    with torch.no_grad():
        expected = model(torch.from_numpy(batch)).numpy().astype(np.float32)

    onnx_path = os.path.join(args.out, "digits_cnn.onnx")
    torch.onnx.export(
        model, torch.from_numpy(batch), onnx_path, opset_version=13,
        input_names=["image"], output_names=["probs"],
        dynamic_axes={"image": {0: "batch"}, "probs": {0: "batch"}},
        do_constant_folding=True)

    np.save(os.path.join(args.out, "inputs", "image.npy"), batch)
    np.save(os.path.join(args.out, "expected", "probs.npy"), expected)
    # One intermediate tensor, for `anvil run --output /pool/MaxPool_output_0` (the ONNX
    # name of the max-pool output; the file name is the sanitized tensor name).
    with torch.no_grad():
        pooled = model.pool(torch.relu(model.bn1(model.conv1(torch.from_numpy(batch))))).numpy()
    np.save(os.path.join(args.out, "expected", "_pool_MaxPool_output_0.npy"), pooled.astype(np.float32))
    with open(os.path.join(args.out, "labels.txt"), "w") as f:
        f.write("".join(f"{int(v)}\n" for v in labels))

    # The same digits as PNGs, grey 0..255 (value * 255 / 16, rounded), upscaled 4x with
    # nearest neighbour to 32x32. `anvil run --input digits/N.png --divide 255` shrinks them
    # back to the model's 8x8 (antialiased, so close to but not exactly the 8x8 pixels).
    for i in range(BATCH):
        grey = np.rint(batch[i, 0] * 255.0).clip(0, 255).astype(np.uint8)
        big = np.kron(grey, np.ones((4, 4), dtype=np.uint8))
        Image.fromarray(big, mode="L").save(
            os.path.join(args.out, "digits", f"{i}_label{int(labels[i])}.png"))

    # PyTorch's predictions for what the image path feeds: the 32x32 PNGs shrunk back to 8x8
    # with an antialiased bilinear filter (PIL's BILINEAR; Anvil uses stb's triangle filter,
    # the same kind), divided by 255.
    png_batch = []
    for i in range(BATCH):
        img = Image.open(os.path.join(args.out, "digits", f"{i}_label{int(labels[i])}.png"))
        small = np.asarray(img.resize((8, 8), Image.BILINEAR), dtype=np.float32) / 255.0
        png_batch.append(small[None])
    with torch.no_grad():
        png_pred = model(torch.from_numpy(np.stack(png_batch))).numpy().argmax(1)

    readme = f"""# Demo model: digits CNN

The only model data in this repository. Made by `python/make_demo_onnx.py` (seeded, run by
hand: `/usr/bin/python3 python/make_demo_onnx.py`), never at build time.

- Data: scikit-learn's bundled digits data set (`sklearn.datasets.load_digits`, 1797 grey 8x8
  images, values 0..16), scaled to [0, 1] by dividing by 16; split 75% / 25% with
  `train_test_split(random_state={SEED}, stratify=y)`.
- Network: Conv(8, 3x3, pad 1) -> BatchNorm -> ReLU -> MaxPool(2) -> Conv(16, 3x3) -> ReLU ->
  Flatten -> Linear(10) -> Softmax; {sum(p.numel() for p in model.parameters())} parameters,
  trained {args.epochs} epochs with Adam on CPU.
- Test accuracy: {accuracy * 100:.2f}% on {len(y_test)} held-out digits.
- Made with PyTorch {torch.__version__} (Debian python3-torch), scikit-learn {__import__('sklearn').__version__},
  NumPy {np.__version__}, Python {platform.python_version()}; exported with
  `torch.onnx.export` (opset 13, constant folding on, which folds the BatchNorm into the
  first Conv).

Files:

| file | content |
|---|---|
| `digits_cnn.onnx` | the model: input `image` (batch, 1, 8, 8) float32 in [0, 1], output `probs` (batch, 10) |
| `inputs/image.npy` | the first {BATCH} test digits, shape ({BATCH}, 1, 8, 8) float32 |
| `expected/probs.npy` | PyTorch's own output for `inputs/image.npy`, shape ({BATCH}, 10) float32 |
| `expected/_pool_MaxPool_output_0.npy` | PyTorch's max-pool output (ONNX tensor `/pool/MaxPool_output_0`) for the same batch, shape ({BATCH}, 8, 4, 4) |
| `labels.txt` | the true labels of those {BATCH} digits, one per line: {' '.join(str(int(v)) for v in labels)} |
| `digits/<i>_label<L>.png` | the same digits as 32x32 grey PNGs (value * 255 / 16 rounded, 4x nearest upscale) |

PyTorch predicts {' '.join(str(int(v)) for v in expected.argmax(1))} for `inputs/image.npy`, and
{' '.join(str(int(v)) for v in png_pred)} for the PNGs shrunk back to 8x8 (PIL's antialiased
bilinear resize, then / 255), which is what
`anvil run models/demo/digits_cnn.onnx --input models/demo/digits/0_label{int(labels[0])}.png --divide 255`
feeds (Anvil shrinks with stb's triangle filter, the same kind of filter).
"""
    with open(os.path.join(args.out, "README.md"), "w") as f:
        f.write(readme)
    print("labels:   ", " ".join(str(int(v)) for v in labels))
    print("predicted:", " ".join(str(int(v)) for v in expected.argmax(1)))
    print("wrote", args.out)


if __name__ == "__main__":
    main()
