#!/usr/bin/env python3
"""Makes the malformed-input corpus (issue 19, "Proving it"): damaged copies of small valid
model and input files, every format and input type Anvil reads.

    python3 tests/data/malformed/make_corpus.py [--check ANVIL]

Writes tests/data/malformed/model/*   (replayed as `anvil summary FILE`),
       tests/data/malformed/keras_json/* (`anvil summary FILE <the fixture's weights.h5>`),
       tests/data/malformed/input/*   (`anvil run models/demo/digits_cnn.onnx --input FILE`),
deterministically (seeded): truncations, bit flips, wrong magic, zeroed and garbage headers,
huge dimensions. With --check, each candidate is run once and those Anvil accepts (exit 0: a
flipped bit in a weight is still a valid model) are dropped; every other outcome is kept, so
the replay test (tests/cli/malformed.sh) fails on crashes, hangs and multi-line messages.
"""
import argparse
import io
import os
import random
import shutil
import struct
import subprocess
import sys
import zipfile
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
FX = os.path.join(SRC, "tests", "data", "fixtures")
DEMO = os.path.join(SRC, "models", "demo")
KERAS_JSON_WEIGHTS = os.path.join(FX, "keras", "resnet_small", "weights.h5")


def read(path):
    with open(path, "rb") as f:
        return f.read()


def truncations(data, n, rng):
    """n prefixes: a few fixed cuts (0, 1, a header's worth) and seeded fractions."""
    cuts = [0, 1, 4, 8, 16, 64]
    cuts = [c for c in cuts if c < len(data)]
    while len(cuts) < n:
        cuts.append(rng.randrange(1, len(data)))
    return [data[:c] for c in sorted(set(cuts))[:n]]


def bit_flips(data, n, rng, lo=0, hi=None, flips=4):
    hi = len(data) if hi is None else min(hi, len(data))
    out = []
    for _ in range(n):
        b = bytearray(data)
        for _ in range(flips):
            i = rng.randrange(lo, hi)
            b[i] ^= 1 << rng.randrange(8)
        out.append(bytes(b))
    return out


def garbage_runs(data, n, rng, lo=0, hi=None):
    """A run of random bytes written over a seeded place (structure, lengths, offsets)."""
    hi = len(data) if hi is None else min(hi, len(data))
    out = []
    for _ in range(n):
        b = bytearray(data)
        i = rng.randrange(lo, max(lo + 1, hi - 8))
        for k in range(i, min(len(b), i + rng.randrange(4, 64))):
            b[k] = rng.randrange(256)
        out.append(bytes(b))
    return out


class Corpus:
    def __init__(self, root):
        self.root = root
        self.files = []  # (kind, path)

    def add(self, kind, name, data):
        d = os.path.join(self.root, kind)
        os.makedirs(d, exist_ok=True)
        p = os.path.join(d, name)
        with open(p, "wb") as f:
            f.write(data)
        self.files.append((kind, p))

    def add_many(self, kind, stem, ext, datas):
        for i, d in enumerate(datas):
            self.add(kind, "%s_%02d%s" % (stem, i, ext), d)


def png_chunk(tag, payload):
    return struct.pack(">I", len(payload)) + tag + payload + struct.pack(
        ">I", zlib.crc32(tag + payload) & 0xFFFFFFFF)


def png(width, height, pixels=b""):
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", zlib.compress(pixels))
            + png_chunk(b"IEND", b""))


def bmp_header(width, height, bpp=24):
    return (b"BM" + struct.pack("<IHHI", 54, 0, 0, 54) +
            struct.pack("<IiiHHIIiiII", 40, width, height, 1, bpp, 0, 0, 2835, 2835, 0, 0))


def npy(header_dict_text, body=b"", magic=b"\x93NUMPY", version=b"\x01\x00"):
    h = header_dict_text.encode("latin1")
    h += b" " * ((16 - (10 + len(h) + 1) % 16) % 16) + b"\n"
    return magic + version + struct.pack("<H", len(h)) + h + body


def keras_zip(config, weights=b"", extra=None):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        z.writestr("metadata.json", '{"keras_version": "3.0.0"}')
        z.writestr("config.json", config)
        z.writestr("model.weights.h5", weights)
        for k, v in (extra or {}).items():
            z.writestr(k, v)
    return buf.getvalue()


def make(root):
    rng = random.Random(19)
    c = Corpus(root)

    # --- models -------------------------------------------------------------------------
    onnx = read(os.path.join(DEMO, "digits_cnn.onnx"))
    c.add_many("model", "onnx_trunc", ".onnx", truncations(onnx, 10, rng))
    c.add_many("model", "onnx_flip", ".onnx", bit_flips(onnx, 12, rng, 0, 600))
    c.add_many("model", "onnx_garbage", ".onnx", garbage_runs(onnx, 10, rng, 0, 1200))
    c.add("model", "onnx_empty.onnx", b"")
    c.add("model", "onnx_text.onnx", b"ir_version: 7\ngraph { node { op_type: 'Relu' } }\n")

    pb = read(os.path.join(FX, "tensorflow", "cnn2d_nn__nhwc_b2_k2_s1_d2_SAME", "frozen_model.pb"))
    c.add_many("model", "pb_trunc", ".pb", truncations(pb, 8, rng))
    c.add_many("model", "pb_flip", ".pb", bit_flips(pb, 10, rng))
    c.add_many("model", "pb_garbage", ".pb", garbage_runs(pb, 6, rng))
    c.add("model", "pb_huge_len.pb", b"\x0a\xff\xff\xff\xff\x0f" + pb)
    pbtxt = (b'node { name: "x" op: "Placeholder" attr { key: "dtype" value { type: DT_FLOAT } }\n'
             b' attr { key: "shape" value { shape { dim { size: 1 } dim { size: 4 } } } } }\n'
             b'node { name: "y" op: "Relu" input: "x" attr { key: "T" value { type: DT_FLOAT } } }\n')
    c.add_many("model", "pbtxt_trunc", ".pbtxt", truncations(pbtxt, 5, rng)[1:])
    c.add("model", "pbtxt_badop.pbtxt", pbtxt.replace(b"Relu", b"NoSuchOpAtAll"))
    c.add("model", "pbtxt_hugedim.pbtxt", pbtxt.replace(b"size: 4", b"size: 9000000000000"))
    c.add("model", "pbtxt_negdim.pbtxt", pbtxt.replace(b"size: 4", b"size: -7"))
    c.add("model", "pbtxt_cycle.pbtxt", pbtxt.replace(b'input: "x"', b'input: "y"'))
    c.add("model", "pbtxt_binary.pbtxt", bytes(rng.randrange(256) for _ in range(300)))

    h5 = read(os.path.join(FX, "keras", "maxpool_valid_s2_odd9", "model.h5"))
    c.add_many("model", "h5_trunc", ".h5", truncations(h5, 10, rng))
    c.add_many("model", "h5_flip", ".h5", bit_flips(h5, 10, rng, 0, 2048))
    c.add_many("model", "h5_garbage", ".h5", garbage_runs(h5, 8, rng, 0, 4096))
    c.add("model", "h5_magic.h5", b"\x89HDX" + h5[4:])

    cfg = read(os.path.join(FX, "keras", "resnet_small", "config.json"))
    c.add("model", "keras_v3_empty_config.keras", keras_zip(""))
    c.add("model", "keras_v3_garbage_config.keras", keras_zip("{not json"))
    c.add("model", "keras_v3_no_weights.keras", keras_zip(cfg.decode()))
    c.add("model", "keras_v3_bad_weights.keras", keras_zip(cfg.decode(), b"\x89HDF\r\n\x1a\n" + b"\0" * 64))
    kz = keras_zip(cfg.decode(), h5)
    c.add_many("model", "keras_trunc", ".keras", truncations(kz, 6, rng)[1:])
    c.add_many("model", "keras_flip", ".keras", bit_flips(kz, 4, rng, 0, 200))

    proto = read(os.path.join(DEMO, "caffe", "deploy.prototxt"))
    c.add_many("model", "prototxt_trunc", ".prototxt", truncations(proto, 8, rng)[1:])
    c.add_many("model", "prototxt_garbage", ".prototxt", garbage_runs(proto, 6, rng))
    text = proto.decode()
    for i, (a, b) in enumerate([("dim: 8", "dim: 900000000"), ("dim: 1", "dim: -1"),
                                ("num_output", "num_outputz"), ("kernel_size", "kernel_size: 0 #"),
                                ("type: \"Convolution\"", "type: \"NoSuchLayer\""),
                                ("bottom: ", "bottom: \"nowhere\" #")]):
        if a in text:
            c.add("model", "prototxt_edit_%02d.prototxt" % i, text.replace(a, b, 1).encode())
    cm = read(os.path.join(DEMO, "caffe", "digits.caffemodel"))
    c.add_many("model", "caffemodel_trunc", ".caffemodel", truncations(cm, 8, rng))
    c.add_many("model", "caffemodel_flip", ".caffemodel", bit_flips(cm, 8, rng, 0, 400))
    c.add_many("model", "caffemodel_garbage", ".caffemodel", garbage_runs(cm, 6, rng, 0, 800))

    tfl = read(os.path.join(FX, "tflite", "add", "add6", "model.tflite"))
    c.add_many("model", "tflite_trunc", ".tflite", truncations(tfl, 8, rng))
    c.add_many("model", "tflite_flip", ".tflite", bit_flips(tfl, 12, rng))
    c.add_many("model", "tflite_garbage", ".tflite", garbage_runs(tfl, 8, rng))
    c.add("model", "tflite_offset.tflite", b"\xff\xff\xff\x7fTFL3" + tfl[8:])
    c.add("model", "tflite_magic.tflite", tfl[:4] + b"TFL9" + tfl[8:])

    # Content under another format's name, and a name no importer knows.
    c.add("model", "h5_named_onnx.onnx", h5)
    c.add("model", "tflite_named_pb.pb", tfl)
    c.add("model", "png_named_onnx.onnx", png(2, 2, b"\0" * 14))
    c.add("model", "unknown_name.model", bytes(rng.randrange(256) for _ in range(512)))

    # --- Keras JSON configs (with the fixture's weights) ------------------------------------
    c.add_many("keras_json", "json_trunc", ".json", truncations(cfg, 6, rng))
    c.add_many("keras_json", "json_garbage", ".json", garbage_runs(cfg, 6, rng))
    jt = cfg.decode()
    for i, (a, b) in enumerate([('"class_name": "Conv2D"', '"class_name": "NoSuchLayer"'),
                                ('"filters": ', '"filters": -'), ('"kernel_size": [', '"kernel_size": [0, '),
                                ('"batch_input_shape": [null', '"batch_input_shape": [4000000000000'),
                                ('"inbound_nodes": [', '"inbound_nodes": [[["nowhere", 0, 0, {}]], ')]):
        if a in jt:
            c.add("keras_json", "json_edit_%02d.json" % i, jt.replace(a, b, 1).encode())

    # --- inputs (fed to the demo digits model, input (N, 1, 8, 8) float32) ----------------
    arr = read(os.path.join(DEMO, "inputs", "image.npy"))
    c.add_many("input", "npy_trunc", ".npy", truncations(arr, 8, rng))
    c.add_many("input", "npy_hdrflip", ".npy", bit_flips(arr, 8, rng, 6, 128, flips=2))
    c.add("input", "npy_magic.npy", b"\x93NUMPX" + arr[6:])
    c.add("input", "npy_version9.npy", arr[:6] + b"\x09\x00" + arr[8:])
    c.add("input", "npy_huge_shape.npy",
          npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1, 1, 4000000000, 4000000000), }"))
    c.add("input", "npy_neg_shape.npy", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1, 1, -8, 8), }"))
    c.add("input", "npy_bad_descr.npy", npy("{'descr': '<q9', 'fortran_order': False, 'shape': (1, 1, 8, 8), }"))
    c.add("input", "npy_object.npy", npy("{'descr': '|O', 'fortran_order': False, 'shape': (1, 1, 8, 8), }"))
    c.add("input", "npy_not_dict.npy", npy("[1, 2, 3]"))
    c.add("input", "npy_hdr_len.npy", arr[:8] + b"\xff\xff" + arr[10:])
    c.add("input", "npy_short_body.npy", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1, 1, 8, 8), }", b"\0" * 100))
    c.add("input", "npy_wrong_shape.npy", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (3, 3), }", b"\0" * 36))
    c.add("input", "npy_wrong_dtype.npy", npy("{'descr': '|b1', 'fortran_order': False, 'shape': (1, 1, 8, 8), }", b"\0" * 64))
    npz = read(os.path.join(SRC, "tests", "data", "npy", "savez.npz"))
    c.add_many("input", "npz_trunc", ".npz", truncations(npz, 6, rng))
    c.add_many("input", "npz_garbage", ".npz", garbage_runs(npz, 4, rng))
    zb = io.BytesIO()
    with zipfile.ZipFile(zb, "w") as z:
        z.writestr("image.npy", b"not an npy")
    c.add("input", "npz_bad_member.npz", zb.getvalue())
    zb = io.BytesIO()
    with zipfile.ZipFile(zb, "w") as z:
        z.writestr("image.txt", b"1 2 3")
    c.add("input", "npz_no_npy.npz", zb.getvalue())

    for name, ext in (("rgb.png", ".png"), ("solid.jpg", ".jpg"), ("rgb.bmp", ".bmp")):
        img = read(os.path.join(SRC, "tests", "data", "images", name))
        stem = ext[1:]
        c.add_many("input", stem + "_trunc", ext, truncations(img, 6, rng)[1:])
        c.add_many("input", stem + "_garbage", ext, garbage_runs(img, 5, rng, 0, min(len(img), 64)))
    c.add("input", "png_huge.png", png(60000, 60000))
    c.add("input", "png_zero.png", png(0, 4))
    c.add("input", "png_bad_crc.png", png(2, 2, b"\0" * 14)[:-4] + b"\0\0\0\0")
    c.add("input", "bmp_huge.bmp", bmp_header(60000, 60000))
    c.add("input", "bmp_huge_neg.bmp", bmp_header(60000, -60000))
    c.add("input", "bmp_zero.bmp", bmp_header(0, 0))
    c.add("input", "bmp_bpp7.bmp", bmp_header(4, 4, bpp=7) + b"\0" * 64)
    c.add("input", "bmp_no_pixels.bmp", bmp_header(64, 64))
    c.add("input", "jpg_sof_huge.jpg", b"\xff\xd8\xff\xc0\x00\x11\x08\xff\xff\xff\xff\x03" + b"\x01\x11\x00" * 3 + b"\xff\xd9")
    c.add("input", "jpg_only_soi.jpg", b"\xff\xd8")
    ppm = b"P6\n4 4\n255\n" + bytes(rng.randrange(256) for _ in range(48))
    c.add_many("input", "ppm_trunc", ".ppm", truncations(ppm, 4, rng)[1:])
    c.add("input", "ppm_huge.ppm", b"P6\n60000 60000\n255\n" + b"\0" * 16)
    c.add("input", "ppm_maxval0.ppm", b"P6\n4 4\n0\n" + b"\0" * 48)
    c.add("input", "ppm_neg.ppm", b"P6\n-4 4\n255\n" + b"\0" * 48)
    c.add("input", "ppm_garbage.ppm", b"P6\nxx yy\n255\n")
    c.add("input", "webp_named.webp", b"RIFF\x10\x00\x00\x00WEBPVP8 " + b"\0" * 8)
    c.add("input", "tiff_named.tiff", b"II*\x00\x08\x00\x00\x00")
    c.add("input", "text_named.csv", b"1,2,3\n")
    return c


def command(anvil, kind, path, out_dir):
    if kind == "model":
        return [anvil, "summary", path]
    if kind == "keras_json":
        return [anvil, "summary", path, KERAS_JSON_WEIGHTS]
    return [anvil, "run", os.path.join(DEMO, "digits_cnn.onnx"), "--input", path, "--output-dir", out_dir]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", metavar="ANVIL", help="drop the candidates this anvil accepts")
    a = ap.parse_args()
    for kind in ("model", "keras_json", "input"):
        shutil.rmtree(os.path.join(HERE, kind), ignore_errors=True)
    c = make(HERE)
    kept, dropped, findings = 0, 0, []
    for kind, p in c.files:
        if not a.check:
            kept += 1
            continue
        out = os.path.join(HERE, ".out")
        try:
            r = subprocess.run(command(a.check, kind, p, out), capture_output=True, timeout=30)
            rc, err = r.returncode, r.stderr.decode("utf-8", "replace")
        except subprocess.TimeoutExpired:
            rc, err = "timeout", ""
        shutil.rmtree(out, ignore_errors=True)
        if rc == 0:
            os.remove(p)
            dropped += 1
            continue
        kept += 1
        lines = err.splitlines()
        if rc != 2 or not lines or any(not l.startswith("  - ") for l in lines[1:]):
            findings.append("%s: exit %s: %s" % (os.path.relpath(p, HERE), rc, err.strip()[:300]))
    print("corpus: %d files kept, %d accepted by anvil and dropped" % (kept, dropped))
    for f in findings:
        print("finding:", f)


if __name__ == "__main__":
    main()
