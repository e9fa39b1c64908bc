"""Reading params.yaml. Each section's schema lives beside the code that reads it (runtime.Runtime, retraining.Retrain,
...) and is made of the checks below; each stage loads the sections it reads. An unknown, missing, mistyped or
out-of-range value raises ParamsError naming the dotted key (`recipes.mnist.space.dropout.max: ...`)."""

import math
import sys

from . import strict_yaml
from .errors import PipelineError, quote

PARAMS_FILE = "params.yaml"
SECTIONS = ("data", "download", "prepare", "runtime", "baseline", "tune", "retrain", "recipes", "evaluate", "transfer",
            "export", "explain")


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
        return in_range(value, key, self.min, self.max)


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
        return float(in_range(value, key, self.min, self.max))


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
        return tuple(self.item.check(v, f"{key}[{i}]") for i, v in enumerate(value))


class Section:
    """A section: subclasses name their keys as class attributes holding checks (`seed = Int(min=1)`), in the order
    params.yaml gives them; `check(value, key)` returns a frozen instance with one attribute per key, after `fits`
    (a subclass's rule for how its keys go together). ELSEWHERE names keys other stages read and check."""

    FIELDS: dict = {}
    ELSEWHERE: tuple = ()

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        own = {name: spec for name, spec in vars(cls).items()
               if not name.startswith("_") and callable(getattr(spec, "check", None))}
        for name in own:
            delattr(cls, name)
        cls.FIELDS = {**cls.FIELDS, **own}

    def __init__(self, **values):
        self.__dict__.update(values)

    def __setattr__(self, name, value):
        raise AttributeError(f"settings are read-only: {type(self).__name__}.{name}")

    def __repr__(self):
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in vars(self).items())})"

    def fits(self, key):
        pass

    @classmethod
    def check(cls, value, key=""):
        if isinstance(value, dict):
            value = {name: item for name, item in value.items() if name not in cls.ELSEWHERE}
        check_names(value, cls.FIELDS, key, f"unknown key (expected one of {', '.join([*cls.FIELDS, *cls.ELSEWHERE])})",
                    "missing")
        checked = cls(**{name: spec.check(value[name], join(key, name)) for name, spec in cls.FIELDS.items()})
        checked.fits(key)
        return checked


def check_names(value, expected, key, unknown_reason, missing_reason):
    """`value` (a mapping) has exactly the keys of `expected`; otherwise the first odd key is named."""
    if not isinstance(value, dict):
        raise ParamsError(f"{key or 'params'}: expected a mapping, got {quote(value)}")
    unknown = sorted((name for name in value if name not in expected), key=str)
    if unknown:
        raise ParamsError(f"{join(key, str(unknown[0])[:100])}: {unknown_reason}")
    missing = [name for name in expected if name not in value]
    if missing:
        raise ParamsError(f"{join(key, missing[0])}: {missing_reason}")


def in_range(value, key, low, high):
    if low is not None and value < low or high is not None and value > high:
        raise ParamsError(f"{key}: {quote(value)} is outside [{'-inf' if low is None else low}, "
                          f"{'inf' if high is None else high}]")
    return value


def join(key, name):
    return f"{key}.{name}" if key else str(name)


SEED = Int(min=1, max=2**31 - 1)  # Keras Tuner treats seed 0 as "unseeded", so 0 is refused everywhere.
SUBSET = Int(min=0)  # 0 means the whole split
BATCH_SIZE = Int(min=1, max=60000)


def load(path=PARAMS_FILE, **sections):
    """The checked sections `name=Schema` of params.yaml, in the order given (one value for one section). A name may
    be a dotted key within a section (`**{"transfer.targets": TARGETS}`), for a stage that reads only that."""
    try:
        raw = strict_yaml.load(path)
    except strict_yaml.Refused as error:
        raise ParamsError(str(error)) from None
    check_names(raw, SECTIONS, "", f"unknown key (expected one of {', '.join(SECTIONS)})", "missing")
    checked = []
    for dotted, schema in sections.items():
        value, walked = raw, ""
        for name in dotted.split("."):
            if not isinstance(value, dict) or name not in value:
                raise ParamsError(f"{join(walked, name)}: missing")
            value, walked = value[name], join(walked, name)
        checked.append(schema.check(value, dotted))
    return checked[0] if len(checked) == 1 else tuple(checked)
