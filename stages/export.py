"""export: write the tuned model as a TensorFlow SavedModel (for serving) and as TFLite models in float32 and int8
(for devices), then run the whole test set through each format's own runtime: size, accuracy and single-image
latency per format. The SavedModel's bytes differ on every export, so it stays out of dvc.lock (docs/export.md).
The SavedModel is converted and measured from the private directory it is written to, before it is moved into
place: export never runs a SavedModel graph it finds on disk."""

from pathlib import Path

import numpy as np

from mnist_pipeline import cli, outputs, prepared, runtime, settings


def main():
    args = cli.parse_paths(__doc__, "model", "data", "saved-model", "out", "metrics", "formats", "timing")
    runtime_settings = settings.load(runtime=runtime.Runtime)
    runtime.start(runtime_settings)
    from mnist_pipeline import export, inference, inputs, model_files

    export_settings = settings.load(export=export.Export)
    runtime.seed(export_settings.seed)
    clock = cli.Stopwatch()
    keras_runner = inference.KerasRunner(args.model, expected=prepared.load_description(args.data))
    x_train, _ = prepared.take_subset(*prepared.load_split(args.data, "train"), export_settings.representative_images,
                                      export_settings.seed)
    with export.fresh_saved_model(keras_runner.model, args.saved_model) as saved_model:
        outputs.write_bytes(Path(args.out, export.TFLITE_FILES["tflite_float32"]), export.tflite_float32(saved_model))
        outputs.write_bytes(Path(args.out, export.TFLITE_FILES["tflite_int8"]),
                            export.tflite_int8(saved_model, inputs.scaled(x_train)))
        saved_model_runner = inference.SavedModelRunner(saved_model)
    clock.mark("export_seconds")

    x_test, y_test = prepared.load_split(args.data, "test")
    timed = inputs.scaled(x_test[:export_settings.latency_runs])
    formats = {"keras": (keras_runner, args.model), "saved_model": (saved_model_runner, None),
               **{name: (inference.LiteRTRunner(Path(args.out, file), runtime_settings.threads), Path(args.out, file))
                  for name, file in export.TFLITE_FILES.items()}}
    formats_measured, latency, predicted = {}, {}, {}
    for name, (runner, path) in formats.items():
        probabilities = inference.in_batches(lambda batch, runner=runner: runner.predict(inputs.scaled(batch)),
                                             x_test, 1000)
        predicted[name] = probabilities.argmax(axis=1)
        # Bytes on disk; the SavedModel's vary by a few from one export to the next, so its size is a timing-file
        # reading like the latencies.
        formats_measured[name] = {"test_accuracy": round(float(np.mean(predicted[name] == y_test)), 6),
                                  **({"size_bytes": export.size_bytes(path)} if path else {})}
        p50, p95 = inference.latency_ms(runner, timed, export_settings.latency_runs)
        latency[name] = {"p50": p50, "p95": p95}
        print(f"{name}: test accuracy {formats_measured[name]['test_accuracy']:.4f}, "
              f"one image p50 {p50:.3f} ms, p95 {p95:.3f} ms")
    # predict names the classes of a .tflite from its dataset.json, once it has checked that it describes that file;
    # the model's temperature travels with it, and each file's accuracy on the test set just measured.
    model_files.describe(args.out, keras_runner.description, export.TFLITE_FILES.values(),
                         temperature=keras_runner.card.temperature,
                         test_accuracy={file: formats_measured[name]["test_accuracy"]
                                        for name, file in export.TFLITE_FILES.items()})
    float32, int8 = formats_measured["tflite_float32"], formats_measured["tflite_int8"]
    agree = np.mean(predicted["tflite_int8"] == predicted["tflite_float32"])
    formats_measured["int8_agrees_with_float32"] = round(float(agree), 6)
    outputs.write_json(args.formats, formats_measured)
    metrics = {  # the headline numbers; every format's accuracy and size are in --formats
        "tflite_float32": {"test_accuracy": float32["test_accuracy"]},
        "tflite_int8": {"test_accuracy": int8["test_accuracy"]},
        "int8_size_reduction": round(float32["size_bytes"] / int8["size_bytes"], 3),
    }
    outputs.write_json(args.metrics, metrics)
    clock.mark("export_and_measure_seconds")
    clock.write(args.timing, latency_ms=latency, saved_model_size_bytes=export.size_bytes(args.saved_model))
    print(f"int8: {metrics['int8_size_reduction']}x smaller than float32, "
          f"{100 * (int8['test_accuracy'] - float32['test_accuracy']):+.2f} accuracy points")


if __name__ == "__main__":
    cli.run(main)
