"""The one base class of the errors a stage reports as a single line (bad params, bad input, failed download or
search), and how such a line quotes a value. Anything else is a bug and keeps its traceback."""

import reprlib


class PipelineError(Exception):
    pass


_SHORT_REPR = reprlib.Repr()
_SHORT_REPR.maxlevel, _SHORT_REPR.maxdict, _SHORT_REPR.maxlist = 3, 4, 6
_SHORT_REPR.maxstring = _SHORT_REPR.maxlong = _SHORT_REPR.maxother = 300


def quote(value, limit=100) -> str:
    """A value as an error message quotes it: its repr, cut to about `limit` characters. reprlib stops early in
    long or deeply nested values, so quoting one costs little whatever its size."""
    text = _SHORT_REPR.repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
