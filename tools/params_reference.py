"""Every key of params.yaml, from the schemas the stages check it with: `python tools/params_reference.py` writes
docs/params.md (key, type and range, the committed value, the stages that read it); `--check` writes nothing and
exits 1 when the page or params.yaml disagree with the schemas. `validate(raw)` checks a whole params file as the
stages together would, rules across sections included."""

import argparse
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tools"))

from mnist_pipeline import cli  # noqa: E402

if __name__ == "__main__":  # before anything imports TensorFlow, whose C++ logs the stages keep out of sight too
    cli.drop_native_logs()
from mnist_pipeline import (  # noqa: E402
    baseline_model,
    datasets,
    evaluation_report,
    export,
    feature_maps,
    preparation,
    recipes,
    retraining,
    runtime,
    search_settings,
    settings,
    sources,
    strict_yaml,
    transfer,
)

PAGE = REPO / "docs" / "params.md"


class Recipes:
    """recipes: one recipe per dataset the pipeline can train on."""

    def check(self, value, key):
        settings.check_names(value, datasets.DATASET_NAMES, key, "not a dataset (expected one of "
                             f"{', '.join(datasets.DATASET_NAMES)})", "missing")
        return {name: recipes.Recipe.check(recipe, f"{key}.{name}") for name, recipe in value.items()}


class Transfer(transfer.Transfer):
    """The transfer section with its targets, which the download and prepare stages check."""
    ELSEWHERE = ()
    targets = datasets.TARGETS


SCHEMA = {"data": datasets.Data, "download": sources.Download, "prepare": preparation.Prepare,
          "runtime": runtime.Runtime, "baseline": baseline_model.Baseline, "tune": search_settings.Tune,
          "retrain": retraining.Retrain, "recipes": Recipes(), "evaluate": evaluation_report.Evaluate,
          "transfer": Transfer, "export": export.Export, "explain": feature_maps.Explain}
assert tuple(SCHEMA) == settings.SECTIONS


def validate(raw) -> dict:
    """Every section checked, then the rules across sections."""
    settings.check_names(raw, SCHEMA, "", f"unknown key (expected one of {', '.join(SCHEMA)})", "missing")
    checked = {name: schema.check(raw[name], name) for name, schema in SCHEMA.items()}
    datasets.chosen(checked["data"], checked["transfer"].targets)
    baseline_model.check_fit(checked["baseline"], datasets.image_shape(checked["data"], checked["data"].dataset))
    search_settings.trial_threads(checked["tune"], checked["runtime"].threads)
    return checked


def load(path) -> dict:
    """The params file at `path`, read as the stages read it, and validated."""
    try:
        raw = strict_yaml.load(path)
    except strict_yaml.Refused as error:
        raise settings.ParamsError(str(error)) from None
    return validate(raw)


def describe(spec) -> str:
    """A check in words: its type and its range."""
    if isinstance(spec, settings.Int):
        bounds = "" if spec.min is None and spec.max is None else \
            f" in [{'-inf' if spec.min is None else spec.min}, {'inf' if spec.max is None else spec.max}]"
        return f"integer{bounds}{', odd' if spec.odd else ''}"
    if isinstance(spec, settings.Float):
        if spec.min is None and spec.max is None:
            return "number"
        return (f"number in {'(' if spec.min_exclusive else '['}{'-inf' if spec.min is None else spec.min}, "
                f"{'inf' if spec.max is None else spec.max}{')' if spec.max_exclusive else ']'}")
    if isinstance(spec, settings.Bool):
        return "true or false"
    if isinstance(spec, settings.Str):
        return "one of " + ", ".join(f"`{choice}`" for choice in spec.choices) if spec.choices else "text"
    if isinstance(spec, settings.ListOf):
        return f"list ({spec.min_length} or more) of: {describe(spec.item)}"
    if isinstance(spec, sources.Source):
        return "list of sources, each one of " + ", ".join(f"`{{{kind}: {what}}}`" for kind, what in spec.KINDS.items())
    if isinstance(spec, recipes.SearchSpace):
        return "for each hyperparameter: `{choice: [...]}`, or for numbers `{min, max}` with `step` or `log: true`"
    if isinstance(spec, datasets.Targets):
        return f"mapping of dataset to dataset ({', '.join(datasets.DATASET_NAMES)})"
    return type(spec).__name__


def rows(raw, schema, key=""):
    """(dotted key, description, committed value) of every key, depth first, as params.yaml orders them."""
    if isinstance(schema, type) and issubclass(schema, settings.Section):
        for name, spec in schema.FIELDS.items():
            yield from rows(raw[name], spec, settings.join(key, name))
    elif isinstance(schema, Recipes):
        for name, recipe in raw.items():
            yield from rows(recipe, recipes.Recipe, f"{key}.{name}")
    else:
        if isinstance(schema, settings.ListOf) and isinstance(schema.item, sources.Source):
            schema = schema.item
        yield key, describe(schema), raw


def shown(value) -> str:
    text = yaml.safe_dump(value, default_flow_style=True, width=10**6).strip().removesuffix("...").strip()
    return f"`{text}`".replace("|", "\\|")


def page() -> str:
    import change_cost

    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    validate(raw)
    graph = change_cost.stages(REPO)
    lines = ["# params.yaml, key by key", "",
             "Generated from the schemas the stages check params with (`python tools/params_reference.py`; a test "
             "fails when this page, params.yaml and the schemas disagree). *A change reruns* lists the stages whose "
             "`dvc.yaml` entry declares the key (or fills a template with it): those stages, and no other. The "
             "download stages read `download` but do not depend on it: it says where the files come from, not what "
             "they are (each is pinned by its sha256). The recipes of the datasets `data.dataset` does not name are "
             "read by no stage until it names them. A value outside its range stops the stage that reads it with one "
             "line naming the key.", ""]
    for section, schema in SCHEMA.items():
        lines += [f"## {section}", "", "| key | type and range | committed value | a change reruns |",
                  "|:---|:---|:---|:---|"]
        for key, what, value in rows(raw[section], schema, section):
            readers = [name for name, (_, keys) in graph.items() if change_cost.reads(key, keys)
                       or any(k.startswith(key + ".") for k in keys)]
            lines.append(f"| `{key}` | {what} | {shown(value)} | {', '.join(readers) or 'no stage'} |")
        lines.append("")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if docs/params.md is stale")
    args = parser.parse_args()
    text = page()
    if args.check:
        if not PAGE.exists() or PAGE.read_text() != text:
            sys.exit(f"{PAGE.relative_to(REPO)} is out of date with params.yaml and the schemas (run "
                     "`python tools/params_reference.py`)")
        print(f"{PAGE.relative_to(REPO)} matches params.yaml and the schemas")
        return
    PAGE.write_text(text)
    print(f"wrote {PAGE.relative_to(REPO)}")


if __name__ == "__main__":
    cli.run(main)
