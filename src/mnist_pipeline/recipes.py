"""What depends on the data, one recipe per dataset (params recipes.<dataset>): the augmentation retrain (and the
search's trials) train behind, retrain's epochs, and the search's ranges for the tunable CNN's hyperparameters. The
stages read the recipe of the dataset their prepared data describes: the search all of it, retrain only its
augmentation and epochs (retraining.py), so that retrain does not depend on the ranges, nor on the code that checks
them."""

from .augmentation import Augmentation
from .cnn import Hyperparameters
from .errors import quote
from .retraining import EPOCHS
from .settings import Bool, Float, Int, ParamsError, Section, check_names


class SearchSpace:
    """A range for each hyperparameter of `values` (name to the check of one value): `{choice: [...]}`, or for
    numbers `{min, max}` with an optional `step` or `log: true`. Every value the range can give passes the check."""

    def __init__(self, values: dict):
        self.values = values

    def check(self, value, key):
        check_names(value, self.values, key, "build_cnn_model does not use this hyperparameter",
                    "missing (build_cnn_model reads it)")
        return {name: self._check_one(spec, self.values[name], f"{key}.{name}") for name, spec in value.items()}

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


class Recipe(Section):
    augmentation = Augmentation
    retrain_epochs = EPOCHS
    space = SearchSpace(Hyperparameters.FIELDS)
