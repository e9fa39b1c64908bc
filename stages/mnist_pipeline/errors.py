"""The one base class of the errors a stage reports as a single line (bad params, bad input, failed download or
search). Anything else is a bug and keeps its traceback."""


class PipelineError(Exception):
    pass
