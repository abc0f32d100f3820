"""The benchmark suite (configs/benchmarks.yaml) and an experiment's eval.yaml, resolved.

  eval_suite.py resolve EVAL_YAML     the resolved eval config as JSON (each benchmark's settings whole)
  eval_suite.py groups [SUITE]        the make groups of the suite, one a line
  eval_suite.py check EVAL_YAML...    a shipped eval.yaml picks only suite benchmarks and
                                      restates none of their identity keys (exit 1 naming it)

A benchmark is one entry of the suite: its name (the entry's key), dataset, group, label,
metric, licence and report section, plus settings every experiment shares (subsets,
few_shot, kind, source, judge, extra_params, ...). An experiment's eval.yaml lists the
benchmarks it runs (`benchmarks:`) and holds only its own settings: `defaults` (limit,
max_tokens, answer_mode, ...) and a section per benchmark (limit, local_path, rows, ...).

Resolving (the one place this rule lives; the shell reads it through config.py --eval, the
report through resolve): each listed benchmark's section is the suite entry's keys, then the
eval.yaml section's (which win), over the eval.yaml defaults: a key neither states, or states
empty, takes the default. Its `group` (make eval-<group>) is the entry's, else the benchmark's
name. The suite is `configs/benchmarks.yaml` next to the experiment's folder
(configs/<exp>/eval.yaml -> configs/benchmarks.yaml), else this repository's.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from lab.files import load_yaml

SUITE_NAME = "benchmarks.yaml"
# What makes a benchmark the benchmark it is: only in the suite.
IDENTITY_KEYS = ("dataset", "group", "label", "metric", "licence", "section")
REQUIRED_KEYS = ("label", "group", "section", "metric", "licence")
SECTIONS = ("knowledge", "psych", "general", "safety", "dialog", "judge", "arena", "perf")


class SuiteError(Exception):
    def __init__(self, reason: str, fix: str):
        super().__init__(reason)
        self.reason, self.fix = reason, fix


def suite_path(eval_yaml: Path | None = None) -> Path:
    """configs/benchmarks.yaml beside the experiment's folder, else this repository's."""
    if eval_yaml is not None:
        beside = Path(eval_yaml).resolve().parent.parent / SUITE_NAME
        if beside.is_file():
            return beside
    return Path(__file__).resolve().parents[2] / "configs" / SUITE_NAME


def read_yaml(path: Path) -> dict:
    with path.open(encoding="utf-8") as handle:
        value = load_yaml(handle) or {}
    if not isinstance(value, dict):
        raise SuiteError(f"{path}: not a mapping", "write key: value lines (see its header)")
    return value


def load_suite(path: Path) -> dict:
    """The suite's entries by name; each entry checked for the keys every benchmark states."""
    if not path.is_file():
        return {}
    suite = read_yaml(path)
    for name, entry in suite.items():
        if not isinstance(entry, dict):
            raise SuiteError(f"{path}: benchmark '{name}' is not a mapping", "give it label, group, section, metric, licence")
        missing = [k for k in REQUIRED_KEYS if entry.get(k) in (None, "")]
        if missing:
            raise SuiteError(f"{path}: benchmark '{name}' has no {', '.join(missing)}",
                             "every benchmark states label, group, section, metric and licence (see the file's header)")
        if entry["section"] not in SECTIONS:
            raise SuiteError(f"{path}: benchmark '{name}' has section '{entry['section']}'", f"use one of: {', '.join(SECTIONS)}")
    return suite


def resolve(eval_yaml: Path, suite: dict | None = None) -> dict:
    """eval.yaml with each listed benchmark's section completed from the suite."""
    config = read_yaml(eval_yaml)
    suite = load_suite(suite_path(eval_yaml)) if suite is None else suite
    resolved = dict(config)
    for name in config.get("benchmarks") or []:
        own = config.get(name) or {}
        entry = suite.get(name)
        if entry is None and not (own.get("dataset") or own.get("kind")):
            raise SuiteError(f"{eval_yaml}: benchmark '{name}' is not in the suite {suite_path(eval_yaml)}",
                             f"add an entry '{name}' to configs/{SUITE_NAME} (label, dataset, group, section, metric, licence)")
        resolved[name] = benchmark_settings(name, {**(entry or {}), **own}, config.get("defaults") or {})
    return resolved


def benchmark_settings(name: str, section: dict, defaults: dict) -> dict:
    """A benchmark's settings: SECTION (its suite entry and eval.yaml section, joined) over the
    eval.yaml DEFAULTS, a value left empty taking the default; `group` its own, else NAME."""
    settings = dict(defaults)
    settings.update({key: value for key, value in section.items() if value not in (None, "") or key not in settings})
    settings["group"] = settings.get("group") or name
    return settings


def labels(suite: dict) -> dict:
    return {name: entry.get("label", name) for name, entry in suite.items()}


def groups(suite: dict) -> list[str]:
    found = []
    for entry in suite.values():
        if entry["group"] not in found:
            found.append(entry["group"])
    return found


def check(eval_yaml: Path) -> list[str]:
    """What a shipped eval.yaml gets wrong about the suite: unknown benchmarks, restated identity keys."""
    config, suite = read_yaml(eval_yaml), load_suite(suite_path(eval_yaml))
    problems = []
    for name in config.get("benchmarks") or []:
        if name not in suite:
            problems.append(f"{eval_yaml}: '{name}' is not a benchmark of configs/{SUITE_NAME}")
        for key in IDENTITY_KEYS:
            if key in (config.get(name) or {}):
                problems.append(f"{eval_yaml}: section {name} restates '{key}', which lives in configs/{SUITE_NAME}")
    return problems


def flatten(value) -> str:
    """A nested value (extra_params) as JSON, for config.py's KEY<TAB>VALUE lines."""
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def main(argv: list[str]) -> int:
    try:
        if argv[:1] == ["resolve"] and len(argv) == 2:
            print(json.dumps(resolve(Path(argv[1])), ensure_ascii=False))
        elif argv[:1] == ["groups"] and len(argv) <= 2:
            path = Path(argv[1]) if len(argv) == 2 else suite_path()
            print("\n".join(groups(load_suite(path))))
        elif argv[:1] == ["check"] and len(argv) >= 2:
            problems = [p for path in argv[1:] for p in check(Path(path))]
            for problem in problems:
                print(f"error: {problem}", file=sys.stderr)
            if problems:
                print(f"fix: a benchmark's identity lives in its one entry of configs/{SUITE_NAME}", file=sys.stderr)
            return 1 if problems else 0
        else:
            print(__doc__, file=sys.stderr)
            return 2
    except SuiteError as error:
        print(f"error: {error.reason}", file=sys.stderr)
        print(f"fix: {error.fix}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
