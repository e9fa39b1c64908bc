"""Training throughput beside this machine's own matrix-multiply peak: for the baseline network (params.yaml) and
the tuned one (models/best_hyperparameters.json), with the retrain augmentation off and on, in float32 and in
Keras' mixed_bfloat16 policy, the images per second of `model.fit`, the arithmetic rate that is (3 x the forward
pass's FLOPs per image: the forward pass and the two products of the backward pass), and that rate as a fraction of
the same-run float32 and bfloat16 matmul peaks. Each configuration runs in a fresh process, with the pipeline's
runtime settings (threads, determinism). With --layers, instead: each layer's milliseconds per batch on its own, in
both precisions, to see where bf16 gains and loses. With --batch-norm, instead: the tuned network as retrain trains
it, built with Keras' own BatchNormalization and with the project's fused one (cnn.BatchNormalization), in
alternating processes. With --augmentation-share, instead: what the augmentation adds to a training step of the
tuned network, from steps with and without it alternating in one process. With --profile, instead: where the time
of the tuned network's training steps goes, by kind of TensorFlow op, from TensorFlow's profiler, in both precisions
with the augmentation and without (what bf16 changes, and what stays in float32). Needs
data/prepared (`make repro` or `dvc pull`). Usage: `make bench`, or

    .venv/bin/python benchmarks/benchmark_training.py [--prepared data/prepared] [--images 20000] [--repeats 3]
        [--layers | --batch-norm [--rounds 3] | --augmentation-share [--steps 30] | --profile [--steps 30]]
        [--backend tensorflow|jax]
"""

import argparse
import collections
import json
import math
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
NETWORKS = ("baseline", "tuned")
PRECISIONS = ("float32", "mixed_bfloat16")
# Kinds of TensorFlow op, by a part of their type name (oneDNN's kernels carry prefixes such as _MklNative).
OP_GROUPS = {"convolutions": ("Conv2D",), "batch norm": ("BatchNorm",), "ReLU and max pooling": ("Relu", "MaxPool"),
             "dense layers": ("MatMul",), "augmentation": ("ImageProjectiveTransform",), "casts": ("Cast",)}
# --profile's configurations: (precision, augmentation), to see what bf16 changes with the augmentation and without.
PROFILED = [(precision, augment) for precision in PRECISIONS for augment in ("on", "off")]


def prepared_files(data_dir) -> list:
    from mnist_pipeline import prepared

    return prepared.data_files(data_dir, "train")


def forward_flops(model) -> int:
    """2 x the multiply-adds of the convolutions and dense layers for one image (the rest is a rounding error)."""
    from keras import layers

    macs = 0
    for layer in model.layers:
        if isinstance(layer, layers.Conv2D):
            _, height, width, _ = layer.output.shape
            macs += height * width * math.prod(layer.kernel.shape)
        elif isinstance(layer, layers.Dense):
            macs += math.prod(layer.kernel.shape)
    return 2 * macs


def build(data_dir, network, augment, precision, backend, keras_batch_norm=False):
    """(augmentation steps, network, batch size, learning rate) as the stages build them, in `precision`; with
    `keras_batch_norm`, Keras' own BatchNormalization where the project's fused one would be."""
    from mnist_pipeline import prepared, runtime, settings

    runtime_settings = settings.load(REPO / "params.yaml", runtime=runtime.Runtime)
    runtime.start(runtime.Runtime(**{**vars(runtime_settings), "backend": backend, "precision": precision}))
    runtime.seed(1)
    import keras

    from mnist_pipeline import augmentation, baseline_model, cnn, recipes

    if keras_batch_norm:
        cnn.BatchNormalization = keras.layers.BatchNormalization
    description = prepared.load_description(data_dir)
    if network == "baseline":
        baseline = settings.load(REPO / "params.yaml", baseline=baseline_model.Baseline)
        model = baseline_model.build_baseline(baseline, description)
        batch_size, learning_rate = baseline.batch_size, baseline.learning_rate
    else:
        hp = cnn.load_hyperparameters(REPO / "models" / "best_hyperparameters.json")
        model = cnn.build_from_description(hp, description)
        batch_size, learning_rate = hp.batch_size, hp.learning_rate
    recipe = settings.load(REPO / "params.yaml", **{f"recipes.{description.name}": recipes.Recipe})
    steps = augmentation.layers_for(recipe.augmentation) if augment else []
    return steps, model, batch_size, learning_rate


def measure(data_dir, network, augment, precision, images, repeats, backend, keras_batch_norm=False):
    """One configuration's training throughput, in this process: prints one JSON line."""
    steps, model, batch_size, learning_rate = build(data_dir, network, augment, precision, backend, keras_batch_norm)
    from mnist_pipeline import augmentation, inputs, prepared, training

    trainer = training.compile_model(augmentation.with_augmentation(model, steps), learning_rate)
    x, y = prepared.take_subset(*prepared.load_split(data_dir, "train"), images, seed=1)
    x = inputs.scaled(x)
    trainer.fit(x[:4 * batch_size], y[:4 * batch_size], batch_size=batch_size, epochs=1, verbose=0)  # trace first
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        trainer.fit(x, y, batch_size=batch_size, epochs=1, verbose=0)
        seconds.append(time.perf_counter() - start)
    print(json.dumps({"images_per_second": len(y) / statistics.median(seconds),
                      "training_flops_per_image": 3 * forward_flops(model)}))


def measure_augmentation_share(data_dir, steps_timed, backend):
    """Milliseconds per training step of the tuned network in float32 with the retrain augmentation in front and
    without it, on one batch of real digits, the two alternating step by step so that a change in the host's speed
    touches both alike; and the augmentation's share of a step, 1 - without / with (medians): prints one JSON line."""
    steps, model, batch_size, learning_rate = build(data_dir, "tuned", True, "float32", backend)
    import keras

    from mnist_pipeline import augmentation, inputs, prepared, training

    trainers = {"with": training.compile_model(augmentation.with_augmentation(model, steps), learning_rate),
                "without": training.compile_model(keras.models.clone_model(model), learning_rate)}
    x, y = prepared.take_subset(*prepared.load_split(data_dir, "train"), batch_size, seed=1)
    x = inputs.scaled(x)
    for trainer in trainers.values():
        trainer.train_on_batch(x, y)  # trace
    milliseconds = {kind: [] for kind in trainers}
    for _ in range(steps_timed):
        for kind, trainer in trainers.items():
            start = time.perf_counter()
            trainer.train_on_batch(x, y)  # returns the loss as a number, so the step has finished
            milliseconds[kind].append(1000 * (time.perf_counter() - start))
    with_, without = (statistics.median(milliseconds[kind]) for kind in ("with", "without"))
    print(json.dumps({"step_ms_with": with_, "step_ms_without": without, "share": 1 - without / with_,
                      "steps": steps_timed, "batch_size": batch_size}))


def measure_profile(data_dir, steps_timed, precision, augment):
    """Milliseconds of each TensorFlow op type in `steps_timed` training steps of the tuned network as retrain trains
    it, in `precision`, with the augmentation or without, summed over the executor's threads, and the steps' wall
    time, from TensorFlow's profiler: prints one JSON line."""
    steps, model, batch_size, learning_rate = build(data_dir, "tuned", augment, precision, "tensorflow")
    import tensorflow as tf
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    from mnist_pipeline import augmentation, inputs, prepared, training

    trainer = training.compile_model(augmentation.with_augmentation(model, steps), learning_rate)
    x, y = prepared.take_subset(*prepared.load_split(data_dir, "train"), batch_size, seed=1)
    x = inputs.scaled(x)
    trainer.train_on_batch(x, y)  # trace
    with tempfile.TemporaryDirectory() as log:
        tf.profiler.experimental.start(log)
        start = time.perf_counter()
        for _ in range(steps_timed):
            trainer.train_on_batch(x, y)
        wall_ms = 1000 * (time.perf_counter() - start)
        tf.profiler.experimental.stop()
        space = xplane_pb2.XSpace()
        space.ParseFromString(next(Path(log).rglob("*.xplane.pb")).read_bytes())
    op_ms = collections.Counter()
    for plane in space.planes:
        names = {key: metadata.name for key, metadata in plane.event_metadata.items()}
        for line in plane.lines:
            if not line.name.startswith("tf_Compute"):  # the executor's threads, where the ops run
                continue
            for event in line.events:
                name = names[event.metadata_id]
                if "/" in name and ":" in name:  # an op: "scope/.../name:OpType"
                    op_ms[name.rsplit(":", 1)[1]] += event.duration_ps / 1e9
    print(json.dumps({"op_ms": op_ms, "wall_ms": wall_ms, "steps": steps_timed, "batch_size": batch_size}))


def measure_layers(data_dir, network, precision, calls):
    """Milliseconds per batch of each layer on its own, forward and backward (augmentation: forward only, as nothing
    before it trains), fed the previous layer's real output: prints one JSON line."""
    steps, model, batch_size, _ = build(data_dir, network, True, precision, "tensorflow")
    import tensorflow as tf

    from mnist_pipeline import inputs, prepared

    tensor = tf.constant(inputs.scaled(prepared.load_split(data_dir, "train")[0][:batch_size]))
    timings = {}
    for index, layer in enumerate([*steps, *model.layers]):
        backward = layer not in steps

        @tf.function
        def call(inputs, layer=layer, backward=backward):
            with tf.GradientTape() as tape:
                tape.watch(inputs)
                outputs = layer(inputs, training=True)
                loss = tf.reduce_sum(tf.cast(outputs, tf.float32))
            if backward:
                return outputs, tape.gradient(loss, [inputs, *layer.trainable_weights])
            return outputs, []

        outputs, _ = call(tensor)  # trace
        seconds = []
        for _ in range(calls):
            start = time.perf_counter()
            _, gradients = call(tensor)
            [gradient.numpy() for gradient in gradients if gradient is not None]
            seconds.append(time.perf_counter() - start)
        timings[f"{index:02d} {layer.__class__.__name__} -> {tuple(outputs.shape[1:])}"] = \
            1000 * statistics.median(seconds)
        tensor = outputs
    print(json.dumps(timings))


def peak(dtype) -> float:
    out = subprocess.run([sys.executable, str(REPO / "benchmarks" / "matmul_peak.py"), "--dtype", dtype], check=True,
                         capture_output=True, text=True).stdout
    return float(out.split(":")[1].split()[0])


def child(args, *spec):
    """Run one measurement in a fresh process (the dtype policy and threads are per process); its JSON line."""
    out = subprocess.run([sys.executable, __file__, "--prepared", args.prepared, "--images", str(args.images),
                          "--repeats", str(args.repeats), "--backend", args.backend, *spec], check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def throughput(args):
    peaks = {"float32": peak("float32"), "bfloat16": peak("bfloat16")}
    rows = []
    for network in NETWORKS:
        for augment in ("off", "on"):
            for precision in PRECISIONS:
                result = child(args, "--child", network, augment, precision)
                gflops = result["images_per_second"] * result["training_flops_per_image"] / 1e9
                rows.append((network, augment, precision, result["images_per_second"], gflops))
    after = {"float32": peak("float32"), "bfloat16": peak("bfloat16")}

    print(f"Keras backend: {args.backend}; TensorFlow's matmul peak (GFLOP/s, 2048², best of 5): "
          f"float32 {peaks['float32']:.0f} before, {after['float32']:.0f} after; "
          f"bfloat16 {peaks['bfloat16']:.0f} before, {after['bfloat16']:.0f} after")
    print("| network | augmentation | precision | images/s | GFLOP/s | of fp32 peak | of bf16 peak |")
    print("|---|---|---|---|---|---|---|")
    fp32, bf16 = ((peaks[dtype] + after[dtype]) / 2 for dtype in ("float32", "bfloat16"))
    for network, augment, precision, rate, gflops in rows:
        print(f"| {network} | {augment} | {precision} | {rate:.0f} | {gflops:.1f} | {gflops / fp32:.0%} | "
              f"{gflops / bf16:.0%} |")
    print("(Augmentation's share of a step, which the host's changes of speed between these processes blur: "
          "--augmentation-share.)")


def batch_norm_comparison(args):
    before = peak("float32")
    rates = {"Keras' BatchNormalization": [], "the project's fused one": []}
    for _ in range(args.rounds):
        for kind, flag in zip(rates, (["--keras-batch-norm"], [])):
            rates[kind].append(child(args, "--child", "tuned", "on", "float32", *flag)["images_per_second"])
    after = peak("float32")
    print(f"The tuned network, augmentation on, float32; images/s per process, alternating. TensorFlow's float32 "
          f"matmul peak: {before:.0f} GFLOP/s before, {after:.0f} after")
    for kind, readings in rates.items():
        print(f"{kind}: {', '.join(f'{rate:.0f}' for rate in readings)} (median {statistics.median(readings):.0f})")
    keras_own, fused = (statistics.median(readings) for readings in rates.values())
    print(f"fused / Keras' own, medians: {fused / keras_own:.2f}x")


def augmentation_share(args):
    before = peak("float32")
    result = child(args, "--child-augmentation", str(args.steps))
    after = peak("float32")
    print(f"The tuned network, float32, {args.backend}: {result['step_ms_with']:.1f} ms per training step of "
          f"{result['batch_size']} images with the augmentation, {result['step_ms_without']:.1f} without (medians of "
          f"{result['steps']} steps each, alternating). TensorFlow's float32 matmul peak: {before:.0f} GFLOP/s "
          f"before, {after:.0f} after")
    print(f"augmentation's share of a training step: {result['share']:.1%}"
          + (" -- over the ~20 % budget" if result["share"] > 0.2 else ""))


def profile(args):
    peaks = {"float32": peak("float32"), "bfloat16": peak("bfloat16")}
    results = {config: child(args, "--child-profile", str(args.steps), *config) for config in PROFILED}
    after = {"float32": peak("float32"), "bfloat16": peak("bfloat16")}
    per_step = {config: collections.Counter() for config in PROFILED}  # ms per step by group of ops
    for config, result in results.items():
        for op_type, ms in result["op_ms"].items():
            group = next((name for name, parts in OP_GROUPS.items() if any(part in op_type for part in parts)),
                         "other")
            per_step[config][group] += ms / args.steps
    wall = {config: result["wall_ms"] / args.steps for config, result in results.items()}
    print(f"The tuned network as retrain trains it, {args.steps} steps of {results[PROFILED[0]]['batch_size']} images "
          "in each precision with the augmentation (on) and without (off), each in a process of its own, under "
          "TensorFlow's profiler; ms per step by kind of op, summed over the executor's threads. TensorFlow's matmul "
          f"peak (GFLOP/s): float32 {peaks['float32']:.0f} before, {after['float32']:.0f} after; bfloat16 "
          f"{peaks['bfloat16']:.0f} before, {after['bfloat16']:.0f} after")

    def line(label, values):
        print(f"| {label} | " + " | ".join(f"{value:.2f}" for value in values) + " |")

    print("| ops | " + " | ".join(f"{precision}, {augment}" for precision, augment in PROFILED) + " |")
    print("|---|" + "---|" * len(PROFILED))
    for group in [*OP_GROUPS, "other"]:
        line(group, [per_step[config][group] for config in PROFILED])
    line("all ops", [sum(per_step[config].values()) for config in PROFILED])
    line("wall time per step", [wall[config] for config in PROFILED])
    ratios = {augment: wall[("mixed_bfloat16", augment)] / wall[("float32", augment)] for augment in ("on", "off")}
    print(f"\nbf16 / fp32, wall time per step: {ratios['on']:.2f} with the augmentation, {ratios['off']:.2f} without")
    for config in PROFILED:
        print(f"\nThe five costliest op types, {config[0]}, augmentation {config[1]}:")
        for op_type, ms in collections.Counter(results[config]["op_ms"]).most_common(5):
            print(f"  {op_type}: {ms / args.steps:.2f} ms per step")


def per_layer(args):
    for network in NETWORKS:
        fp32, bf16 = (child(args, "--child-layers", network, precision) for precision in PRECISIONS)
        print(f"\n{network}: milliseconds per batch, each layer alone (forward + backward; augmentation forward)")
        print("| layer -> output shape | float32 | mixed_bfloat16 | bf16 / fp32 |")
        print("|---|---|---|---|")
        for name in fp32:
            print(f"| {name} | {fp32[name]:.2f} | {bf16[name]:.2f} | {bf16[name] / fp32[name]:.2f} |")
        print(f"| all layers | {sum(fp32.values()):.2f} | {sum(bf16.values()):.2f} | "
              f"{sum(bf16.values()) / sum(fp32.values()):.2f} |")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prepared", default=str(REPO / "data" / "prepared"))
    parser.add_argument("--images", type=int, default=20000, help="training images per timed epoch")
    parser.add_argument("--repeats", type=int, default=3, help="timed epochs per configuration (the median counts)")
    parser.add_argument("--layers", action="store_true",
                        help="instead: each layer's time per batch in float32 and mixed_bfloat16 (with augmentation)")
    parser.add_argument("--batch-norm", action="store_true",
                        help="instead: the tuned network with Keras' BatchNormalization against the project's fused "
                             "one")
    parser.add_argument("--rounds", type=int, default=3, help="--batch-norm: measurements of each, alternating")
    parser.add_argument("--augmentation-share", action="store_true",
                        help="instead: the augmentation's share of a training step of the tuned network")
    parser.add_argument("--profile", action="store_true",
                        help="instead: the tuned network's training time by kind of TensorFlow op, in both "
                             "precisions, with the augmentation and without")
    parser.add_argument("--steps", type=int, default=30,
                        help="--augmentation-share: timed steps of each, alternating; --profile: steps profiled")
    parser.add_argument("--backend", choices=("tensorflow", "jax"), help="Keras backend of the throughput table "
                        "(default: params runtime.backend; --layers times TensorFlow)")
    parser.add_argument("--child", nargs=3, metavar=("NETWORK", "AUGMENT", "PRECISION"), help=argparse.SUPPRESS)
    parser.add_argument("--keras-batch-norm", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--child-layers", nargs=2, metavar=("NETWORK", "PRECISION"), help=argparse.SUPPRESS)
    parser.add_argument("--child-augmentation", type=int, metavar="STEPS", help=argparse.SUPPRESS)
    parser.add_argument("--child-profile", nargs=3, metavar=("STEPS", "PRECISION", "AUGMENT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.backend = args.backend or yaml.safe_load((REPO / "params.yaml").read_text())["runtime"]["backend"]
    if args.child:
        measure(args.prepared, args.child[0], args.child[1] == "on", args.child[2], args.images, args.repeats,
                args.backend, args.keras_batch_norm)
    elif args.child_layers:
        measure_layers(args.prepared, *args.child_layers, calls=50)
    elif args.child_augmentation:
        measure_augmentation_share(args.prepared, args.child_augmentation, args.backend)
    elif args.child_profile:
        measure_profile(args.prepared, int(args.child_profile[0]), args.child_profile[1], args.child_profile[2] == "on")
    elif not all(path.exists() for path in prepared_files(args.prepared)):
        sys.exit(f"benchmark: no prepared data in {args.prepared}: run `make repro` (or `dvc pull`) first")
    elif args.layers:
        per_layer(args)
    elif args.batch_norm:
        batch_norm_comparison(args)
    elif args.augmentation_share:
        augmentation_share(args)
    elif args.profile:
        profile(args)
    else:
        throughput(args)


if __name__ == "__main__":
    main()
