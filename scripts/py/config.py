"""The one YAML reader of the shell scripts: prints a config as `KEY<TAB>VALUE` lines
for scripts/lib/common.sh's load_config.

  config.py [--eval] FILE

--eval: FILE is an experiment's eval.yaml, each benchmark's section printed with its settings
whole: its entry of the suite configs/benchmarks.yaml, its own keys, the defaults, its group
(scripts/py/eval_suite.py's rule).
Top-level keys print as KEY, the keys of a section (a mapping) as SECTION.KEY. A list
prints its items separated by the unit separator (0x1f). Booleans print as true/false;
a tab, a newline or a backslash inside a value as \\t, \\n, \\\\. A file that is not
YAML, or not a mapping, exits 2 naming the file and the line.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import yaml

from lab.files import load_yaml

LIST_SEPARATOR = "\x1f"


def scalar(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    text = str(value)
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")


def render(value) -> str:
    if isinstance(value, dict):
        return scalar(json.dumps(value, ensure_ascii=False, sort_keys=True))
    if isinstance(value, list):
        return LIST_SEPARATOR.join(scalar(item) for item in value)
    return scalar(value)


def lines(config: dict):
    for key, value in config.items():
        if isinstance(value, dict):
            for sub_key, sub_value in value.items():
                yield f"{key}.{sub_key}", render(sub_value)
        else:
            yield str(key), render(value)


def main(argv: list[str]) -> int:
    resolve = argv[:1] == ["--eval"]
    if resolve:
        argv = argv[1:]
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    path = argv[0]
    try:
        if resolve:
            import eval_suite

            try:
                config = eval_suite.resolve(Path(path))
            except eval_suite.SuiteError as error:
                print(f"{error.reason}\nfix: {error.fix}", file=sys.stderr)
                return 2
        else:
            with open(path, encoding="utf-8") as handle:
                config = load_yaml(handle) or {}
    except OSError as error:
        print(f"{path}: cannot be read: {error.strerror}", file=sys.stderr)
        return 2
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f":{mark.line + 1}" if mark else ""
        print(f"{path}{where}: not valid YAML: {getattr(error, 'problem', error)}", file=sys.stderr)
        return 2
    if not isinstance(config, dict):
        print(f"{path}: not a mapping of settings (key: value lines)", file=sys.stderr)
        return 2
    for key, value in lines(config):
        print(f"{key}\t{value}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
