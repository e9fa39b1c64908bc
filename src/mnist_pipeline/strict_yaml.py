"""yaml.safe_load, stricter where a params file gains nothing from YAML's generality: a key given twice in one mapping
is an error (DVC refuses such a file too; PyYAML would keep the last), aliases (*name) are refused (a few of them
nested expand to billions of values), and so is nesting beyond MAX_NESTING levels (the composer recurses once per
level, and the scanner slows quadratically with the depth of [ and { it has open)."""

import yaml

from .errors import PipelineError, quote

MAX_NESTING = 32  # params.yaml nests 4 deep; a file far deeper is a mistake or an attack on the parser


class Refused(PipelineError, ValueError):
    """A file that is not the plain YAML this loader takes; the message names the file and the line."""


class _Refusal(yaml.YAMLError):
    def __init__(self, problem, mark):
        super().__init__(f"line {mark.line + 1} {problem}")


class _StrictLoader(yaml.SafeLoader):
    depth = 0

    def fetch_flow_collection_start(self, token_class):
        if self.flow_level >= MAX_NESTING:
            raise _Refusal(f"nests values more than {MAX_NESTING} levels deep", self.get_mark())
        super().fetch_flow_collection_start(token_class)

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            raise _Refusal("uses a YAML alias (*name); write the value out", self.peek_event().start_mark)
        self.depth += 1
        try:
            if self.depth > MAX_NESTING:
                raise _Refusal(f"nests values more than {MAX_NESTING} levels deep", self.peek_event().start_mark)
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else id(key_node)
            if key in seen:
                raise _Refusal(f"gives the key {quote(key)} twice in one mapping", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def load(path):
    """The value the YAML file at `path` holds; Refused, naming the file, for anything else."""
    with open(path, "rb") as f:
        data = f.read()
    try:
        return yaml.load(data.decode("utf-8"), Loader=_StrictLoader)
    except UnicodeDecodeError as error:
        raise Refused(f"{path}: not UTF-8 text (byte {data[error.start]:#04x} at offset {error.start})") from None
    except _Refusal as error:
        raise Refused(f"{path}: {error}") from None
    except (yaml.YAMLError, ValueError) as error:  # ValueError: an integer too long for Python to read
        raise Refused(f"{path}: not valid YAML: {quote(str(error), 300)[1:-1]}") from None
