"""The results tables of README.md and docs/, built from the committed outputs of the pipeline (metrics/ and
models/best_hyperparameters.json) with pandas, so that no number in them is typed by hand.

Each table sits between `<!-- table: NAME -->` and `<!-- /table -->` in the page that shows it. `make report`
(python tools/report.py) rewrites them; `--check` rewrites nothing and exits 1, naming each table that disagrees
with the metrics (a test runs it, so the committed pages cannot drift from the committed metrics).
"""

import argparse
import json
import re
import sys
from pathlib import Path

import pandas as pd
import yaml

REPO = Path(__file__).resolve().parents[1]
# In dvc.yaml the markers are YAML comments: `# <!-- table: NAME -->` ... `# <!-- /table -->`.
TABLE = re.compile(r"(<!-- table: (?P<name>[\w-]+) -->\n)(?P<body>.*?)((?:# )?<!-- /table -->)", re.S)


def read_json(path):
    return json.loads((REPO / path).read_text())


def percent(value, digits=2):
    return f"{100 * value:.{digits}f} %"


def minutes(seconds):
    return f"{seconds // 60:.0f}:{seconds % 60:02.0f}"


def headline():
    evaluate, tune, export = (read_json(f"metrics/{name}.json") for name in ("evaluate", "tune", "export"))
    transfer, test_count = read_json("metrics/transfer.json"), read_json("metrics/data_counts.json")["test"]

    def errors(model):
        return round((1 - evaluate[model]["test_accuracy"]) * test_count)

    calibration = evaluate["tuned_calibration"]
    rows = [
        ("baseline (the notebook's CNN), test accuracy",
         f"{percent(evaluate['baseline']['test_accuracy'])} ({errors('baseline')} errors of {test_count:,})"),
        ("tuned (the search's best, retrained), test accuracy",
         f"{percent(evaluate['tuned']['test_accuracy'])} ({errors('tuned')} errors)"),
        ("tuned: expected calibration error on the test set, as trained / with its temperature",
         f"{percent(calibration['ece_as_trained'])} / {percent(calibration['ece_with_temperature'])}"),
        ("search: best validation accuracy",
         f"{percent(tune['best_val_accuracy'])} (trial {tune['best_trial']} of {tune['trials_completed']}, "
         f"{tune['algorithm']} search, {tune['epochs_spent']} epochs in all)"),
        ("TFLite int8 against float32",
         f"{export['int8_size_reduction']:.2f}x smaller, "
         f"{100 * (export['tflite_int8']['test_accuracy'] - export['tflite_float32']['test_accuracy']):+.2f} points "
         f"({percent(export['tflite_int8']['test_accuracy'])})"),
        *((f"transfer {transfer_route()}, {name.split('_')[1]} images: fine-tuned / from scratch (to its best)",
           f"{percent(result['fine_tuned'])} / {percent(result['from_scratch'])} "
           f"({100 * (result['fine_tuned'] - result['from_scratch']):+.2f} points)")
          for name, result in transfer.items()),
    ]
    return pd.DataFrame(rows, columns=["result", "committed run"])


def artifacts():
    """dvc.yaml's model registry entries (docs/registry.md), their meta from the committed metrics."""
    from mnist_pipeline.datasets import DATASETS

    evaluate, export = read_json("metrics/evaluate.json"), read_json("metrics/export.json")
    dataset = yaml.safe_load((REPO / "params.yaml").read_text())["data"]["dataset"]
    title = DATASETS[dataset].title if dataset in DATASETS else "a folder of your own images"
    entries = {
        "tuned-model": {"path": "models/tuned", "type": "model",
                        "desc": "The search's best network retrained: a Keras model directory (model.json, "
                                "model.weights.h5, dataset.json)",
                        "labels": ["keras", "cnn", dataset],
                        "meta": {"dataset": title, "test_accuracy": evaluate["tuned"]["test_accuracy"]}},
        "exported-model": {"path": "models/export", "type": "model",
                           "desc": "The tuned network for serving and devices: float32.tflite, int8.tflite and "
                                   "dataset.json",
                           "labels": ["tflite", "int8", "float32", dataset],
                           "meta": {"dataset": title,
                                    "int8_test_accuracy": export["tflite_int8"]["test_accuracy"],
                                    "float32_test_accuracy": export["tflite_float32"]["test_accuracy"]}},
    }
    return yaml.safe_dump({"artifacts": entries}, sort_keys=False, width=120)


def transfer_route():
    """"MNIST → Fashion-MNIST": the dataset of the committed run and its transfer target, as params name them."""
    from mnist_pipeline.datasets import DATASETS

    settings = yaml.safe_load((REPO / "params.yaml").read_text())
    source = settings["data"]["dataset"]
    return f"{DATASETS[source].title} → {DATASETS[settings['transfer']['targets'][source]].title}"


def per_class():
    table = pd.read_csv(REPO / "metrics/per_class.csv", dtype={"class": str})
    wide = table.pivot(index="class", columns="model", values="f1").loc[table["class"].unique()]
    support = table[table["model"] == "tuned"].set_index("class")["support"]
    return pd.DataFrame({"class": wide.index, "baseline F1": wide["baseline"].map("{:.4f}".format),
                         "tuned F1": wide["tuned"].map("{:.4f}".format), "test images": support[wide.index].values})


def export_formats():
    formats, timing = read_json("metrics/export_formats.json"), read_json("metrics/timing/export.json")
    latency = timing["latency_ms"]
    names = {"keras": "Keras model directory (`models/tuned/`)", "saved_model": "SavedModel (`models/serving/`)",
             "tflite_float32": "TFLite float32", "tflite_int8": "TFLite int8"}
    return pd.DataFrame([{
        "format": label,
        "size": (f"{formats[name]['size_bytes']:,} B" if "size_bytes" in formats[name]
                 else f"{timing['saved_model_size_bytes']:,} B (varies by a few bytes)"),
        "test accuracy": percent(formats[name]["test_accuracy"]),
        "one image, p50 / p95": f"{latency[name]['p50']:.3f} / {latency[name]['p95']:.3f} ms",
    } for name, label in names.items()])


def stage_times():
    """Each stage's timing file, in the order dvc.yaml runs them."""
    rows = []
    for stage in yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]:
        path = REPO / "metrics/timing" / f"{stage}.json"
        if not path.exists():  # the download stages write none
            continue
        timing = json.loads(path.read_text())
        seconds = {key: value for key, value in timing.items()
                   if key.endswith("_seconds") and isinstance(value, (int, float))}
        rows.append({"stage": stage, "seconds": ", ".join(f"{key.removesuffix('_seconds').replace('_', ' ')} "
                                                          f"{value:g}" for key, value in seconds.items()),
                     "peak memory": f"{timing['peak_memory_mb']} MB"})
    return pd.DataFrame(rows)


def run_time():
    """The committed run's stage time in all, and its three longest stages."""
    rows = []
    for stage in yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]:
        path = REPO / "metrics/timing" / f"{stage}.json"
        if path.exists():
            marks = [v for k, v in json.loads(path.read_text()).items()
                     if k.endswith("_seconds") and isinstance(v, (int, float))]
            rows.append((stage, max(marks, default=0.0)))
    total = sum(seconds for _, seconds in rows)
    longest = sorted(rows, key=lambda row: -row[1])[:3]
    return pd.DataFrame([{"stages of the committed run, in all": minutes(total),
                          "the longest": ", ".join(f"{stage} {minutes(seconds)}"
                                                   for stage, seconds in longest)}])


def trials():
    table = pd.read_csv(REPO / "metrics/trials.csv", dtype={"trial": str})
    best = read_json("metrics/tune.json")["best_trial"]
    table["val_accuracy"] = table["val_accuracy"].map(lambda v: "" if pd.isna(v) else f"{v:.4f}")
    table["learning_rate"] = table["learning_rate"].map("{:.2e}".format)
    table["trial"] = [f"**{t}**" if t == best else t for t in table["trial"]]
    return table.drop(columns=["val_loss", "error"])


RULES = {"same_epochs": "same epochs", "to_its_best": "to its best"}


def transfer():
    """Each comparison of the committed run: both rules, both methods, the steps each trained."""
    table = pd.read_csv(REPO / "metrics/transfer.csv")
    wide = table.pivot_table(index=["images", "rule"], columns="method", values=["test_accuracy", "steps"],
                             aggfunc="first", sort=False)
    return pd.DataFrame([{
        "labelled images": images, "each side trained": RULES[rule],
        "fine-tuned": f"{percent(row['test_accuracy', 'fine_tuned'])} ({row['steps', 'fine_tuned']} steps)",
        "from scratch": f"{percent(row['test_accuracy', 'from_scratch'])} ({row['steps', 'from_scratch']} steps)",
        "gain": f"{100 * (row['test_accuracy', 'fine_tuned'] - row['test_accuracy', 'from_scratch']):+.2f} points",
    } for (images, rule), row in wide.iterrows()])


def transfer_seeds():
    """The gain at each size by each rule over the seeds of studies/transfer_seeds.py: mean and range."""
    table = pd.read_csv(REPO / "studies/transfer_seeds.csv")
    wide = table.pivot_table(index=["images", "rule", "seed"], columns="method", values="test_accuracy")
    gains = (100 * (wide["fine_tuned"] - wide["from_scratch"])).rename("gain").reset_index()
    scratch = (100 * wide["from_scratch"]).rename("scratch").reset_index()
    rows = []
    for (images, rule), found in gains.groupby(["images", "rule"], sort=False):
        from_scratch = scratch[(scratch["images"] == images) & (scratch["rule"] == rule)]["scratch"]
        rows.append({"labelled images": images, "each side trained": RULES[rule],
                     "seeds": ", ".join(map(str, sorted(found["seed"]))),
                     "gain, mean (range)": f"{found['gain'].mean():+.2f} ({found['gain'].min():+.2f} to "
                                           f"{found['gain'].max():+.2f}) points",
                     "from scratch, range": f"{from_scratch.min():.2f}-{from_scratch.max():.2f} %"})
    return pd.DataFrame(rows)


def machine(table):
    """"on <cpu>, matmul peak X before and Y after": where and on what the rows were measured."""
    first = table.iloc[0]
    return (f"On {first['cpu']}" if "cpu" in table else "On the machine of the run") + (
        f", fp32 matmul peak {first['matmul_peak_before']} GFLOP/s before and {first['matmul_peak_after']} after"
        if "matmul_peak_before" in table else "")


def folder_scale():
    table = pd.read_csv(REPO / "benchmarks/results/folder_scale.csv")
    return pd.DataFrame([{
        "images (RGB 64x64)": f"{row.images:,}", "prepare": f"{row.prepare_seconds:.1f} s",
        "per 1 000 images": f"{1000 * row.prepare_seconds / row.images:.2f} s",
        "prepare's peak memory": f"{row.prepare_peak_mb:,} MB", "one baseline epoch": f"{row.epoch_seconds:.1f} s",
        "its peak memory": f"{row.epoch_peak_mb:,} MB"} for row in table.itertuples()]), machine(table)


def serve_load():
    table = pd.read_csv(REPO / "benchmarks/results/serve_load.csv")
    return pd.DataFrame([{
        "format": row.format + (f", beside {row.slow_clients} slow clients (cut off {row.slow_cut_off} times)"
                                if getattr(row, "slow_clients", 0) else ""),
        "requests/s": f"{row.requests_per_second:.0f}",
        "p50 / p95 / p99": f"{row.p50:.1f} / {row.p95:.1f} / {row.p99:.1f} ms", "failed": row.failed,
        "one image through its runner, p50": f"{row.runner_p50_ms:.3f} ms",
        "server memory: first / last / highest": f"{row.memory_first_mb} / {row.memory_last_mb} / "
                                                 f"{row.memory_highest_mb} MB"} for row in table.itertuples()]), (
        f"{machine(table)}; {table.iloc[0]['clients']} clients, {table.iloc[0]['seconds']:g} s a format")


TIME_TO_ACCURACY_FIGURE = "docs/figures/time_to_accuracy.png"
WRITING = True  # False under --check: nothing is written


def time_to_accuracy():
    """Each recipe's result over its seeds (the last epoch of each run), and the figure of every run's curve."""
    table = pd.read_csv(REPO / "benchmarks/results/time_to_accuracy.csv")
    last = table.loc[table.groupby(["recipe", "seed"])["epoch"].idxmax()]
    rows = []
    for recipe, runs in last.groupby("recipe", sort=False):
        accuracy = 100 * runs["test_accuracy"]
        rows.append({"recipe": recipe, "seeds": ", ".join(map(str, runs["seed"])), "epochs": runs["epoch"].iloc[0],
                     "test accuracy, mean (range)":
                         f"{accuracy.mean():.2f} % ({accuracy.min():.2f}-{accuracy.max():.2f})",
                     "training seconds, mean": f"{runs['train_seconds'].mean():.0f}",
                     "training TFLOP": f"{runs['train_tflop'].iloc[0]:,.0f}",
                     "same-run matmul peak": _peaks(runs)})
    if WRITING:
        _time_to_accuracy_figure(table)
    return pd.DataFrame(rows), f"On {', '.join(table['cpu'].unique())}, each recipe beside the peaks of its own runs"


def _peaks(runs):
    """The fp32 matmul peaks measured before and after the runs, as one range of GFLOP/s."""
    low, high = runs[["matmul_peak_before", "matmul_peak_after"]].stack().agg(["min", "max"])
    return f"{low}-{high} GFLOP/s" if low != high else f"{low} GFLOP/s"


def _time_to_accuracy_figure(table):
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot, ticker

    figure, axes = pyplot.subplots(1, 2, figsize=(10, 4), sharey=True)
    colours = dict(zip(table["recipe"].unique(), pyplot.get_cmap("tab10").colors))
    for (recipe, _), run in table.groupby(["recipe", "seed"], sort=False):
        for ax, x in zip(axes, ("train_seconds", "train_tflop")):
            ax.plot(run[x], 100 * (1 - run["test_accuracy"]), marker=".", color=colours[recipe], alpha=0.7,
                    label=recipe if ax is axes[0] else None)  # one entry a recipe: see the legend below
    # Log scales: MNIST's recipes differ by tenths of a point, Fashion-MNIST's errors are ten times theirs.
    axes[0].set(xlabel="training seconds (log scale)", ylabel="test error (%, log scale)",
                title="against time (this machine)", xscale="log", yscale="log")
    ticks = [0.3, 0.5, 1, 2, 5, 10, 20]
    axes[0].set_yticks(ticks, [f"{tick:g}" for tick in ticks])
    axes[0].yaxis.set_minor_formatter(ticker.NullFormatter())
    for ax in axes:
        ax.xaxis.set_major_formatter(ticker.FuncFormatter(lambda value, _: f"{value:g}"))
    axes[1].set(xlabel="training TFLOP (log scale)", title="against arithmetic (any machine)", xscale="log")
    handles, labels = axes[0].get_legend_handles_labels()
    unique = dict(zip(labels, handles))
    axes[0].legend(unique.values(), unique.keys(), loc="center right")
    figure.tight_layout()
    (REPO / TIME_TO_ACCURACY_FIGURE).parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(REPO / TIME_TO_ACCURACY_FIGURE, dpi=80, metadata={"Software": None})
    pyplot.close(figure)


def pipeline_time():
    """Each dataset's pipeline at two revisions, forced, side by side: wall time per run and the ratio per round."""
    table = pd.read_csv(REPO / "benchmarks/results/pipeline_time.csv", dtype={"commit": str})
    rows, ratios = [], []
    for row in table.itertuples():
        stages = json.loads(row.stages)
        longest = sorted(stages.items(), key=lambda item: -(item[1] or 0))[:3]
        rows.append({"data.dataset": row.dataset, "round": row.round, "revision": f"{row.revision} ({row.commit})",
                     "dvc repro --force": minutes(row.seconds),
                     "tuned test accuracy": "not recorded" if pd.isna(row.tuned_test_accuracy)
                     else percent(row.tuned_test_accuracy),
                     "the longest stages": ", ".join(f"{name} {seconds:.0f} s" for name, seconds in longest),
                     "matmul peak before / after": f"{row.matmul_peak_before} / {row.matmul_peak_after}"})
    for dataset, runs in table.groupby("dataset", sort=False):
        by_round = runs.pivot(index="round", columns="revision", values="seconds")
        ratios.append(f"{dataset}: head's time is " + ", ".join(
            f"{share:.2f} of base's ({1 / share:.2f}x as fast)" if share <= 1 else f"{share:.2f}x base's"
            for share in by_round["head"] / by_round["base"]))
    return pd.DataFrame(rows), (f"On {', '.join(table['cpu'].unique())}, each run beside its own matmul peaks; "
                                f"{'; '.join(ratios)} (by round)")


def jax_pipeline():
    """The default pipeline under JAX on each machine it was run on: its seconds, stage by stage."""
    table = pd.read_csv(REPO / "benchmarks/results/jax_pipeline.csv", keep_default_na=False)
    rows = []
    for row in table.itertuples():
        stages = json.loads(row.stages)
        rows.append({"device": f"{row.device} ({row.cpu})" if row.device != "cpu" else f"CPU: {row.cpu}",
                     "JAX": row.jax, "params": row.settings or "the defaults",
                     "the pipeline": minutes(row.seconds),
                     "its stages, seconds": ", ".join(f"{name} {seconds:.0f}" for name, seconds in stages.items()
                                                      if seconds >= 1),
                     "left out": row.left_out or "nothing",
                     "tuned test accuracy": percent(row.tuned_test_accuracy),
                     "JAX float32 matmul, GFLOP/s before / after":
                         f"{row.matmul_gflops_before} / {row.matmul_gflops_after}"})
    return pd.DataFrame(rows)


def fashion_parity():
    table = pd.read_csv(REPO / "studies/fashion_parity.csv")
    every = set(yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"])
    return pd.DataFrame([{
        "route": row.route,
        "stages run": "every stage" if set(row.stages.split()) == every else row.stages.replace(" ", ", "),
        "tuned test accuracy": percent(row.tuned_test_accuracy),
        "baseline test accuracy": percent(row.baseline_test_accuracy),
        "wall time": minutes(row.seconds),
        "matmul peak before / after": f"{row.peak_before} / {row.peak_after}"}
        for row in table.itertuples()]), None


def data_counts():
    counts = read_json("metrics/data.json")
    splits = [split for split in ("train", "val", "test") if split in counts]
    return pd.DataFrame({split: pd.Series(counts[split]["per_class"]) for split in splits}).rename_axis(
        "class").reset_index()


def change_cost_modules():
    """What a one-line edit of each library module costs (tools/change_cost.py)."""
    import change_cost

    return change_cost.module_table(change_cost.summary(REPO)), None


def change_cost_params():
    import change_cost

    return change_cost.params_table(change_cost.summary(REPO)), None


TABLES = {"headline": headline, "per-class": per_class, "export-formats": export_formats, "stage-times": stage_times,
          "trials": trials, "transfer": transfer, "transfer-seeds": transfer_seeds, "data-counts": data_counts,
          "folder-scale": folder_scale, "serve-load": serve_load, "fashion-parity": fashion_parity,
          "change-cost-modules": change_cost_modules, "change-cost-params": change_cost_params,
          "run-time": run_time, "artifacts": artifacts, "time-to-accuracy": time_to_accuracy,
          "pipeline-time": pipeline_time, "jax-pipeline": jax_pipeline}
PAGES = ("README.md", *sorted(str(path.relative_to(REPO)) for path in (REPO / "docs").glob("*.md")), "dvc.yaml")


def render(name) -> str:
    """The table as markdown; a table from a benchmark also says where it was measured."""
    try:
        found = TABLES[name]()
    except FileNotFoundError as missing:
        sys.exit(f"table {name}: {Path(missing.filename).relative_to(REPO)} is missing (the page above the table "
                 "names the command that writes it)")
    table, where = found if isinstance(found, tuple) else (found, None)
    if isinstance(table, str):  # already markdown
        return table
    return table.to_markdown(index=False, disable_numparse=True) + "\n" + (f"\n{where}.\n" if where else "")


def rebuilt(text) -> str:
    return TABLE.sub(lambda found: found.group(1) + render(found.group("name")) + found.group(4), text)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if a table is out of date")
    args = parser.parse_args()
    global WRITING
    WRITING = not args.check
    stale = []
    for page in PAGES:
        text = (REPO / page).read_text()
        unknown = [name for name in TABLE.findall(text) if name[1] not in TABLES]
        if unknown:
            sys.exit(f"{page}: no table named {unknown[0][1]} (known: {', '.join(TABLES)})")
        new = rebuilt(text)
        if new != text:
            stale += [f"{page}: {found.group('name')}" for found in TABLE.finditer(text)
                      if found.group("body") != render(found.group("name"))]
            if not args.check:
                (REPO / page).write_text(new)
    if args.check and stale:
        sys.exit("out of date with the committed metrics (run `make report`): " + ", ".join(stale))
    print(f"{'checked' if args.check else 'rebuilt'} the tables of {len(PAGES)} page(s)"
          + (f"; updated: {', '.join(stale)}" if stale and not args.check else ""))


if __name__ == "__main__":
    main()
