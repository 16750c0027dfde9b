#!/usr/bin/env bash
# Builds the seed corpora of the fuzz targets from the repository's test data.
# Usage: tests/fuzz/make_corpus.sh <out-dir>   (creates <out-dir>/<target>/ for each target;
# the corpora are build outputs, never committed).
set -euo pipefail
src="$(cd "$(dirname "$0")/../.." && pwd)"
out="${1:?usage: make_corpus.sh <out-dir>}"
py=/usr/bin/python3
for t in onnx keras_h5 keras_json caffe_prototxt caffemodel npy npz tflite tf_graphdef image; do mkdir -p "$out/$t"; done

# Copies a file into a corpus under a content-derived name (dedups identical seeds).
seed() {  # seed <target> <file>
  local h; h=$(sha1sum "$2" | cut -c1-16)
  cp -f "$2" "$out/$1/seed-$h"
}

shopt -s nullglob
for f in "$src"/models/demo/*.onnx "$src"/tests/data/*/*.onnx; do seed onnx "$f"; done
# Debian's libonnx-testdata (the ONNX backend node tests), when installed: one small model per op.
for f in /usr/share/libonnx-testdata/data/node/*/model.onnx /usr/share/libonnx-testdata/data/simple/*/model.onnx; do
  [ "$(stat -c %s "$f")" -le 16384 ] && seed onnx "$f"
done
for f in "$src"/tests/data/fixtures/keras/*/model.h5; do seed keras_h5 "$f"; done
for f in "$src"/tests/data/fixtures/caffe/*/deploy.prototxt; do seed caffe_prototxt "$f"; done
for f in "$src"/tests/data/fixtures/caffe/*/model.caffemodel; do seed caffemodel "$f"; done
for f in "$src"/tests/data/npy/*.npy; do seed npy "$f"; done
for f in "$src"/tests/data/fixtures/tflite/*/*/model.tflite; do seed tflite "$f"; done
for f in "$src"/tests/data/fixtures/tensorflow/*/frozen_model.pb; do seed tf_graphdef "$f"; done
for f in "$src"/tests/data/npy/*.npz; do seed npz "$f"; done
for f in "$src"/tests/data/images/*.png "$src"/tests/data/images/*.jpg "$src"/tests/data/images/*.bmp \
  "$src"/models/demo/digits/*.png; do seed image "$f"; done
# Small activation archives from the fixtures (real numpy savez output).
for f in "$src"/tests/data/fixtures/*/*/activations.npz; do
  [ "$(stat -c %s "$f")" -le 20000 ] && seed npz "$f"
done
# A few minimal hand-made seeds.
printf '{}' > "$out/keras_json/seed-empty-object"
printf 'name: "n"\ninput: "data"\ninput_shape { dim: 1 dim: 1 dim: 2 dim: 2 }\nlayer { name: "r" type: "ReLU" bottom: "data" top: "r" }\n' \
  > "$out/caffe_prototxt/seed-relu"

# Keras model configs: the model_config JSON attribute of each fixture .h5 (found by scanning
# the file for the JSON object; no h5py needed).
"$py" - "$out/keras_json" "$src"/tests/data/fixtures/keras/*/model.h5 <<'PY'
import hashlib, json, sys
out = sys.argv[1]
for path in sys.argv[2:]:
    data = open(path, "rb").read()
    i = data.find(b'{"class_name"')
    while i >= 0:
        try:
            obj, end = json.JSONDecoder().raw_decode(data[i:].decode("latin-1"))
        except ValueError:
            i = data.find(b'{"class_name"', i + 1)
            continue
        if isinstance(obj, dict) and "config" in obj:
            text = json.dumps(obj).encode()
            open(f"{out}/seed-{hashlib.sha1(text).hexdigest()[:16]}", "wb").write(text)
            break
        i = data.find(b'{"class_name"', i + 1)
PY
for t in onnx keras_h5 keras_json caffe_prototxt caffemodel npy npz tflite tf_graphdef image; do
  echo "$t: $(ls "$out/$t" | wc -l) seeds"
done
