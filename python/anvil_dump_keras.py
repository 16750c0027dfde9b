#!/usr/bin/python3
"""Dumps every layer's output of a Keras model into an .npz for `anvil verify`.

    python3 anvil_dump_keras.py MODEL.h5 --input image=x.npy -o ref.npz
    python3 anvil_dump_keras.py model.json --weights weights.h5 --input x.npy -o ref.npz
    anvil verify MODEL.h5 --reference ref.npz

Works with standalone Keras 2.x (any backend) and with tf.keras (TensorFlow 2; --tf-keras
forces it). Builds a second Model with the same inputs and every layer's output as outputs
and predicts once; keys are Keras layer names ("name:i" for output i > 0 of a layer with
several outputs), inputs are stored under the input layer names. A layer called more than once
(shared layer) is dumped at its first call; the layers inside a nested model are not dumped
separately (the nested model's output is, under its name). Images: NHWC by default.
"""
import os
import sys
from collections import OrderedDict

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import anvil_dump_common as common  # noqa: E402


def import_keras(tf_keras):
    if not tf_keras:
        try:
            import keras
            return keras
        except ImportError:
            pass
    from tensorflow import keras
    return keras


def load_model(keras, path, weights):
    if path.lower().endswith(".json"):
        with open(path) as f:
            model = keras.models.model_from_json(f.read())
        if not weights:
            raise common.DumpError("a JSON config needs --weights WEIGHTS.h5")
        model.load_weights(weights)
        return model
    model = keras.models.load_model(path, compile=False)
    if weights:
        model.load_weights(weights)
    return model


def layer_outputs(model):
    """[(key, tensor)] for every layer but the input layers, in the model's layer order."""
    out, notes = [], []
    for layer in model.layers:
        if type(layer).__name__ == "InputLayer":
            continue
        try:
            t = layer.get_output_at(0)
        except (AttributeError, ValueError, RuntimeError) as e:
            notes.append("layer %s: no output to fetch (%s)" % (layer.name, e))
            continue
        n_calls = len(getattr(layer, "_inbound_nodes", getattr(layer, "inbound_nodes", [])))
        if n_calls > 1:
            notes.append("layer %s is called %d times: its first call is dumped"
                         % (layer.name, n_calls))
        ts = t if isinstance(t, (list, tuple)) else [t]
        for i, ti in enumerate(ts):
            out.append((common.output_key(layer.name, i), ti))
    return out, notes


def main():
    p = common.make_parser(__doc__, [("model", "Keras .h5/.keras full model, or a JSON config")],
                           "nhwc")
    p.add_argument("--weights", help="weights .h5 (with a JSON config, or to override)")
    p.add_argument("--tf-keras", action="store_true", help="use tensorflow.keras")
    p.add_argument("--batch-size", type=int, default=32)
    args = p.parse_args()

    keras = import_keras(args.tf_keras)
    model = load_model(keras, args.model, args.weights)
    input_names = [t_name for t_name in model.input_names]
    shapes = {n: tuple(keras.backend.int_shape(t)) for n, t in zip(input_names, model.inputs)}
    feeds = common.load_inputs(args, input_names, shapes)

    outs, notes = layer_outputs(model)
    if not outs:
        raise common.DumpError("the model has no layer outputs to dump")
    dump = keras.models.Model(inputs=model.inputs, outputs=[t for _, t in outs])
    values = dump.predict([feeds[n] for n in input_names], batch_size=args.batch_size)
    if len(outs) == 1:
        values = [values]
    outputs = OrderedDict((k, v) for (k, _), v in zip(outs, values))
    notes.append("Keras %s, backend %s" % (keras.__version__, keras.backend.backend()))
    common.write_npz(args.output, feeds, outputs, args, notes)


if __name__ == "__main__":
    common.run_main(main)
