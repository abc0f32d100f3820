"""Variants of an experiment: configs/<name>/variant.yaml says what differs from its base
experiment, and this script writes the variant's native configs from the base's, so that
configs/<name>/ holds plain configs a person can run without this repo's scripts.
Called by scripts/variants.sh (make new-exp, make new-grid, make variants) and by
preflight (is a variant's folder what its variant.yaml makes?).

  variant.py [KEY OPTIONS] generate [--check] [NAME ...]   every variant when no NAME
  variant.py [KEY OPTIONS] new --from BASE --name NAME --set "k=v ..." [--config sft] [--why TEXT]
  variant.py [KEY OPTIONS] grid --from BASE --grid "k=v1,v2 k1=a,b+k2=c,d" [--why TEXT]

variant.yaml (the only hand-written file of a variant):

  # what the variant varies, and why (copied into every generated file's header)
  from: gpt-oss-20b-sft-v1        # the base experiment: configs/<from>/
  sft:                            # top-level keys of sft.yaml that differ (replace the base's)
    lora_rank: 32
  export: {}                      # likewise for export.yaml, deploy.yaml, eval.yaml
  deploy: {}
  eval: {}
  requirements:                   # requirements.env values (whole numbers)
    GPU_FREE_MIB_PER_GPU: 61440

A generated file is the base's, line for line and with its comments, under a header
naming its sources; an overridden top-level key's lines are replaced in place (marked
`# variant.yaml; base: <old>`), a new key is appended at the end. The result is parsed
back and must equal the base's content plus the overrides exactly. Files the base shares
stay shared: the system prompt is the base's (the configs name configs/<base>/system.txt),
and the base's experiment.mk is included, not copied.

KEY OPTIONS (scripts/variants.sh passes them from scripts/lib/config_keys.sh and
lib/eval_config.sh, so the rules live in one place): --machine-keys CMD=KEY:SETTING...
(repeated), --requirement-keys, --bench-keys, --pilot-keys (eval.yaml's pilot section). A key that `swift <cmd>` does not accept
(env/swift-<cmd>-args.txt) or that is a machine setting is an error naming it.

Exit status: 0 done; 1 an error (printed as `error:` and `fix:` lines); with --check, 1
when a variant's files are not what its variant.yaml makes.
"""
from __future__ import annotations

import argparse
import re
import shlex
import sys
import textwrap
from decimal import Decimal
from pathlib import Path

import yaml

from lab.files import load_yaml, write_atomic

PREFIX = "[variants]"
SECTIONS = {"sft": "sft.yaml", "export": "export.yaml", "deploy": "deploy.yaml", "eval": "eval.yaml",
            "requirements": "requirements.env"}
SWIFT_SECTIONS = ("sft", "export", "deploy")
EXPERIMENT_MK = "experiment.mk"
VARIANT_FILE = "variant.yaml"
NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]*$")
# Floats YAML 1.2 reads but PyYAML (YAML 1.1) takes for strings: 2e-4, 5E+3, 1.5e-5 without a sign.
FLOAT_RE = re.compile(r"^[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)[eE][-+]?[0-9]+$")
# The names a grid gives its variants: <base>-<short><value>; other keys use the key itself.
GRID_NAMES = {"lora_rank": "r", "learning_rate": "lr", "max_length": "len", "gradient_accumulation_steps": "ga",
              "per_device_train_batch_size": "bs", "lora_alpha": "a", "num_train_epochs": "ep", "lora_dropout": "drop"}


class VariantError(Exception):
    def __init__(self, message: str, fix: str = ""):
        super().__init__(message)
        self.message, self.fix = message, fix


def generated_marker(base: str, file: str, name: str) -> str:
    return (f"# generated from configs/{base}/{file} and configs/{name}/{VARIANT_FILE} by make variants; "
            f"edit {VARIANT_FILE}")


# ---------------------------------------------------------------- values

def normalise(value):
    """A value as ms-swift means it: an exponent without a dot (2e-4) is a float (YAML 1.2)."""
    if isinstance(value, str) and FLOAT_RE.match(value.strip()):
        return float(value)
    if isinstance(value, list):
        return [normalise(item) for item in value]
    if isinstance(value, dict):
        return {key: normalise(item) for key, item in value.items()}
    return value


def format_float(value: float) -> str:
    """The shortest text PyYAML reads back as exactly this float: 2.0e-4, 0.01, 3.0."""
    if value != value or value in (float("inf"), float("-inf")):
        raise VariantError(f"{value} is not a usable setting", "give a finite number")
    if value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e6):
        mantissa, exponent = f"{Decimal(repr(value)).normalize():e}".split("e")
        if "." not in mantissa:
            mantissa += ".0"
        exponent = int(exponent)
        return f"{mantissa}e{'-' if exponent < 0 else '+'}{abs(exponent)}"
    text = repr(value)
    return text if "." in text or "e" in text else text + ".0"


def flow(value) -> str:
    """One value in YAML flow style, as a config line shows it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, float):
        return format_float(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        text = yaml.safe_dump([value], default_flow_style=True, allow_unicode=True, width=10**9).strip()
        return text[1:-1]
    if isinstance(value, list):
        return "[" + ", ".join(flow(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{flow(key)}: {flow(item)}" for key, item in value.items()) + "}"
    raise VariantError(f"cannot write the value {value!r} in a config", "use a number, a string, true/false or a list")


def parse_value(text: str):
    try:
        return normalise(load_yaml(text))
    except yaml.YAMLError as error:
        raise VariantError(f"'{text}' is not a YAML value: {getattr(error, 'problem', error)}",
                           "write a YAML scalar or flow list, e.g. 32, 2e-4, true, [all-linear]")


# ---------------------------------------------------------------- the repo's rules

class Rules:
    """What a variant may override: flags of swift <cmd>, no machine setting, the
    requirements' keys, eval.yaml's sections."""

    def __init__(self, root: Path, machine_keys: list[str], requirement_keys: str, bench_keys: str,
                 pilot_keys: str = ""):
        self.root = root
        self.machine = {}
        for item in machine_keys:
            command, _, pairs = item.partition("=")
            self.machine[command] = dict(pair.split(":", 1) for pair in pairs.split())
        self.requirement_keys = requirement_keys.split()
        self.bench_keys = bench_keys.split()
        self.pilot_keys = pilot_keys.split()
        self._flags: dict[str, set] = {}

    def flags(self, command: str) -> set:
        if command not in self._flags:
            path = self.root / "env" / f"swift-{command}-args.txt"
            if not path.is_file():
                raise VariantError(f"env/swift-{command}-args.txt is missing, so the keys cannot be checked",
                                   "run scripts/gen-swift-args.sh")
            self._flags[command] = {line.strip() for line in path.read_text().splitlines()
                                    if line.strip() and not line.startswith("#")}
        return self._flags[command]

    def check(self, section: str, key, value, where: str) -> None:
        if not isinstance(key, str) or not key:
            raise VariantError(f"{where}: a key must be a name, not {key!r}", "write key: value lines")
        if value is None:
            raise VariantError(f"{where}: '{key}' has no value", "give it one (a variant cannot remove a key of its base)")
        if section in SWIFT_SECTIONS:
            flag = key.replace("-", "_")
            if flag in self.machine.get(section, {}):
                setting = self.machine[section][flag]
                raise VariantError(f"{where}: '{key}' is a machine setting: the scripts set it from {setting}",
                                   f"leave it out; set {setting} in the env file or on the make command line")
            if flag not in self.flags(section):
                raise VariantError(f"{where}: '{key}' is not a flag of swift {section} (ms-swift 4.6)",
                                   f"check the spelling; the accepted names are in env/swift-{section}-args.txt")
        elif section == "requirements":
            if key not in self.requirement_keys:
                raise VariantError(f"{where}: '{key}' is not a requirement", f"use one of: {' '.join(self.requirement_keys)}")
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise VariantError(f"{where}: {key} must be a whole number, not {value!r}", f"e.g. {key}=61440")
        elif section == "eval":
            if key == "benchmarks":
                if not isinstance(value, list) or not value:
                    raise VariantError(f"{where}: benchmarks must be a list of benchmark names", "e.g. benchmarks: [ceval, cmmlu]")
                return
            if not isinstance(value, dict):
                raise VariantError(f"{where}: eval.yaml's '{key}' is a section of settings (a mapping)",
                                   "give the whole section, e.g. eval: {defaults: {limit: 50, max_tokens: 1024, temperature: 0}}")
            allowed = self.pilot_keys if key == "pilot" else self.bench_keys
            unknown = [k for k in value if k not in allowed]
            if unknown:
                raise VariantError(f"{where}: eval section '{key}' has the unknown key '{unknown[0]}'",
                                   f"use: {' '.join(allowed)}")


# ---------------------------------------------------------------- experiments

def configs(root: Path) -> Path:
    return root / "configs"


def variant_names(root: Path) -> list[str]:
    return sorted(p.parent.name for p in configs(root).glob(f"*/{VARIANT_FILE}"))


def check_name(name: str, what: str = "NAME") -> None:
    if not name or not NAME_RE.match(name) or name == ".." or "/" in name:
        raise VariantError(f"{what}='{name}' is not a valid experiment name",
                           f"use letters, digits, '.', '_' or '-' (no '/', not starting with '.'), e.g. {what}=gpt-oss-20b-sft-r32")


def check_base(root: Path, base: str) -> None:
    check_name(base, "FROM")
    folder = configs(root) / base
    if not (folder / "sft.yaml").is_file():
        found = sorted(p.parent.name for p in configs(root).glob("*/sft.yaml") if not (p.parent / VARIANT_FILE).exists())
        raise VariantError(f"FROM={base}: configs/{base}/sft.yaml not found", f"use an experiment with a config: {' '.join(found)}")
    if (folder / VARIANT_FILE).is_file():
        origin = read_variant(root, base)["from"]
        raise VariantError(f"FROM={base} is itself a variant (of {origin})",
                           f"derive from {origin} and give both variants' settings: FROM={origin} SET=\"...\"")


def read_yaml_file(path: Path, shown: str):
    try:
        return load_yaml(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f":{mark.line + 1}" if mark else ""
        raise VariantError(f"{shown}{where}: not valid YAML: {getattr(error, 'problem', error)}", f"fix {shown}")


def read_variant(root: Path, name: str) -> dict:
    shown = f"configs/{name}/{VARIANT_FILE}"
    data = read_yaml_file(configs(root) / name / VARIANT_FILE, shown)
    if not isinstance(data, dict) or not isinstance(data.get("from"), str):
        raise VariantError(f"{shown}: needs 'from: <base experiment>'", f"e.g. from: gpt-oss-20b-sft-v1, then sections {' '.join(SECTIONS)}")
    unknown = [key for key in data if key != "from" and key not in SECTIONS]
    if unknown:
        raise VariantError(f"{shown}: unknown section '{unknown[0]}'", f"use: from, {', '.join(SECTIONS)}")
    overrides = {}
    for section in SECTIONS:
        values = data.get(section) or {}
        if not isinstance(values, dict):
            raise VariantError(f"{shown}: '{section}' must be a mapping of top-level keys", f"write it as '{section}:' followed by indented 'key: value' lines")
        overrides[section] = {key: normalise(value) for key, value in values.items()}
    return {"from": data["from"], "overrides": overrides, "header": header_comment(configs(root) / name / VARIANT_FILE)}


def header_comment(path: Path) -> list[str]:
    """The comment lines a variant.yaml starts with: what it varies and why."""
    lines = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.startswith("#"):
            break
        lines.append(line.rstrip())
    return lines


def read_requirements(path: Path) -> dict:
    return read_requirements_text(path.read_text(encoding="utf-8"))


def read_requirements_text(text: str) -> dict:
    """KEY=VALUE lines (comments and blank lines left out), as preflight reads them."""
    values = {}
    for line in text.splitlines():
        stripped = line.split("#", 1)[0].strip()
        if stripped and "=" in stripped:
            key, _, value = stripped.partition("=")
            values[key.strip()] = int(value.strip()) if value.strip().isdigit() else value.strip()
    return values


# ---------------------------------------------------------------- generation

def leaf_end(node) -> tuple[int, int]:
    """Where a YAML node's text ends (line, column): its last scalar's end, so the
    comments that follow a block list stay with the next key."""
    if isinstance(node, yaml.SequenceNode) and not node.flow_style and node.value:
        return leaf_end(node.value[-1])
    if isinstance(node, yaml.MappingNode) and not node.flow_style and node.value:
        return leaf_end(node.value[-1][1])
    return node.end_mark.line, node.end_mark.column


def top_level_spans(text: str, shown: str) -> dict:
    """{key: (first line, line after its value)} of a config's top-level keys."""
    try:
        node = yaml.compose(text)
    except yaml.YAMLError as error:
        raise VariantError(f"{shown}: not valid YAML: {getattr(error, 'problem', error)}", f"fix {shown}")
    if node is None:
        return {}
    if not isinstance(node, yaml.MappingNode):
        raise VariantError(f"{shown}: not a mapping of settings", f"fix {shown}")
    spans = {}
    for key_node, value_node in node.value:
        line, column = leaf_end(value_node)
        end = line if column == 0 and line > key_node.start_mark.line else line + 1
        spans[key_node.value] = (key_node.start_mark.line, end)
    return spans


def shown_value(value, shown: str) -> str:
    text = flow(value)
    return text if len(text) <= 60 else f"another value, see {shown}"


def file_header(base: str, file: str, name: str, variant_header: list[str]) -> list[str]:
    return [generated_marker(base, file, name), *variant_header,
            *comment(f"The base's file, its comments included, with the keys of configs/{name}/{VARIANT_FILE} "
                     f"replaced in place (marked) or appended. It runs on its own as the comments below say, with "
                     f"configs/{name}/ and output/{name} in place of configs/{base}/ and output/{base}."), ""]


def generate_yaml(base_text: str, overrides: dict, base: str, file: str, name: str, header: list[str]) -> str:
    shown = f"configs/{base}/{file}"
    spans = top_level_spans(base_text, shown)
    base_content = load_yaml(base_text) or {}
    lines = base_text.splitlines()
    for key in sorted((k for k in overrides if k in spans), key=lambda k: spans[k][0], reverse=True):
        start, end = spans[key]
        lines[start:end] = [f"{key}: {flow(overrides[key])}  # {VARIANT_FILE}; base: {shown_value(base_content[key], shown)}"]
    for key, value in overrides.items():
        if key not in spans:
            lines.append(f"{key}: {flow(value)}  # {VARIANT_FILE}; not in the base")
    text = "\n".join(file_header(base, file, name, header) + lines) + "\n"
    expected = {**base_content, **overrides}
    if load_yaml(text) != expected:  # the generator's own guarantee
        raise VariantError(f"configs/{name}/{file}: the generated text does not parse to {shown} plus the overrides",
                           "report this as a bug of scripts/py/variant.py; set the value in a simpler form meanwhile")
    return text


def generate_requirements(base_text: str, overrides: dict, base: str, name: str, header: list[str]) -> str:
    lines = base_text.splitlines()
    base_values = read_requirements_text(base_text)
    done = set()
    for index, line in enumerate(lines):
        key = line.split("=", 1)[0].strip()
        if not line.lstrip().startswith("#") and "=" in line and key in overrides:
            lines[index] = f"{key}={overrides[key]}  # {VARIANT_FILE}; base: {base_values[key]}"
            done.add(key)
    lines += [f"{key}={value}  # {VARIANT_FILE}; not in the base" for key, value in overrides.items() if key not in done]
    text = "\n".join(file_header(base, "requirements.env", name, header) + lines) + "\n"
    if read_requirements_text(text) != {**base_values, **overrides}:
        raise VariantError(f"configs/{name}/requirements.env does not hold configs/{base}/requirements.env plus the overrides",
                           "report this as a bug of scripts/py/variant.py")
    return text


def generated_files(root: Path, rules: Rules, name: str) -> dict[str, str]:
    """{file name: text} of the variant NAME, from its variant.yaml and its base."""
    variant = read_variant(root, name)
    base = variant["from"]
    where = f"configs/{name}/{VARIANT_FILE}"
    try:
        check_base(root, base)
    except VariantError as error:
        raise VariantError(f"{where}: from: {error.message}", error.fix)
    base_dir = configs(root) / base
    files = {}
    for section, file in SECTIONS.items():
        overrides = variant["overrides"][section]
        for key, value in overrides.items():
            rules.check(section, key, value, f"{where}, {section}")
        path = base_dir / file
        if not path.is_file():
            if overrides:
                raise VariantError(f"{where}: overrides {section} keys, but configs/{base}/{file} does not exist",
                                   f"remove the '{section}' section, or add configs/{base}/{file}")
            continue
        text = path.read_text(encoding="utf-8")
        if section == "requirements":
            files[file] = generate_requirements(text, overrides, base, name, variant["header"])
        else:
            files[file] = generate_yaml(text, overrides, base, file, name, variant["header"])
    if (base_dir / EXPERIMENT_MK).is_file():
        files[EXPERIMENT_MK] = "\n".join([
            generated_marker(base, EXPERIMENT_MK, name),
            f"# The prerequisites of {name} are its base's (make includes this file when EXP={name}).",
            f"include configs/{base}/{EXPERIMENT_MK}", ""])
    return files


def is_generated(path: Path) -> bool:
    try:
        with path.open(encoding="utf-8") as handle:
            return handle.readline().startswith("# generated from configs/")
    except (OSError, UnicodeDecodeError):
        return False


def write_variant_files(root: Path, rules: Rules, name: str) -> list[str]:
    folder = configs(root) / name
    files = generated_files(root, rules, name)
    for file, text in files.items():
        path = folder / file
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            write_atomic(path, text)
    # A generated file its base no longer has goes; the user's own files stay.
    for path in folder.iterdir():
        if path.is_file() and path.name not in files and path.name != VARIANT_FILE and is_generated(path):
            path.unlink()
    return sorted(files)


def check_variant_files(root: Path, rules: Rules, name: str) -> list[str]:
    """What differs between configs/NAME/ and a fresh generation, one line each."""
    folder = configs(root) / name
    files = generated_files(root, rules, name)
    problems = []
    for file, text in files.items():
        path = folder / file
        if not path.is_file():
            problems.append(f"configs/{name}/{file} is missing")
        elif path.read_text(encoding="utf-8") != text:
            problems.append(f"configs/{name}/{file} differs from what configs/{name}/{VARIANT_FILE} and configs/"
                            f"{read_variant(root, name)['from']}/ make (edited by hand, or its base changed)")
    for path in sorted(folder.iterdir()):
        if path.is_file() and path.name not in files and path.name != VARIANT_FILE and is_generated(path):
            problems.append(f"configs/{name}/{path.name} is a generated file its base no longer has")
    return problems


# ---------------------------------------------------------------- commands

def cmd_generate(root: Path, rules: Rules, names: list[str], check: bool) -> int:
    names = names or variant_names(root)
    for name in names:
        check_name(name)
        if not (configs(root) / name / VARIANT_FILE).is_file():
            raise VariantError(f"configs/{name}/{VARIANT_FILE} not found: {name} is not a variant",
                               f"variants here: {' '.join(variant_names(root)) or 'none'}")
    if check:
        problems = [line for name in names for line in check_variant_files(root, rules, name)]
        for line in problems:
            print(f"{PREFIX} error: {line}", file=sys.stderr)
        if problems:
            print(f"{PREFIX} fix: edit configs/<variant>/{VARIANT_FILE}, never the generated files, then run "
                  "make variants (and commit both)", file=sys.stderr)
            return 1
        return 0
    for name in names:
        files = write_variant_files(root, rules, name)
        print(f"{PREFIX} configs/{name}/: {' '.join(files)} (from {read_variant(root, name)['from']})", file=sys.stderr)
    return 0


def parse_set(text: str, default_section: str) -> dict:
    """SET="k=v k2=v2" (shell words; a key may name its config: export.max_shard_size=5GB)."""
    if default_section not in SECTIONS:
        raise VariantError(f"CONFIG={default_section} is not a config of an experiment", f"use one of: {' '.join(SECTIONS)}")
    overrides: dict = {section: {} for section in SECTIONS}
    try:
        words = shlex.split(text or "")
    except ValueError as error:
        raise VariantError(f"SET cannot be split into words: {error}", "quote values with spaces: SET=\"k='[a, b]'\"")
    if not words:
        raise VariantError("SET is empty: a variant states what differs from its base",
                           'e.g. SET="lora_rank=32 lora_alpha=128"')
    for word in words:
        key, sep, value = word.partition("=")
        if not sep or not key:
            raise VariantError(f"SET item '{word}' is not key=value", 'e.g. SET="lora_rank=32 learning_rate=2e-4"')
        section = default_section
        head, dot, tail = key.partition(".")
        if dot and head in SECTIONS:
            section, key = head, tail
        overrides[section][key] = parse_value(value)
    return overrides


def describe(overrides: dict, base_values: dict) -> str:
    parts = []
    for section, values in overrides.items():
        for key, value in values.items():
            old = base_values.get(section, {}).get(key)
            parts.append(f"{key} {flow(old) if old is not None else '(unset)'} -> {flow(value)}")
    return ", ".join(parts)


def base_values(root: Path, base: str) -> dict:
    values = {}
    for section, file in SECTIONS.items():
        path = configs(root) / base / file
        if not path.is_file():
            values[section] = {}
        elif section == "requirements":
            values[section] = read_requirements(path)
        else:
            values[section] = read_yaml_file(path, f"configs/{base}/{file}") or {}
    return values


def comment(text: str) -> list[str]:
    return ["# " + line for line in textwrap.wrap(text, width=98, break_on_hyphens=False)]


def variant_yaml(name: str, base: str, overrides: dict, why: str, what: str) -> str:
    lines = [*comment(f"{name}: a variant of {base}: {what}."),
             *comment(f"Why: {why}" if why else "Why: not given (make new-exp WHY=\"...\"): say here why this variant exists."),
             f"from: {base}  # the other files of configs/{name}/ are generated from configs/{base}/ and this file"]
    for section, values in overrides.items():
        if values:
            lines.append(f"{section}:")
            lines += [f"  {key}: {flow(value)}" for key, value in values.items()]
    return "\n".join(lines) + "\n"


def create_variant(root: Path, rules: Rules, base: str, name: str, overrides: dict, why: str) -> None:
    folder = configs(root) / name
    folder.mkdir()
    values = base_values(root, base)
    text = variant_yaml(name, base, overrides, why, describe(overrides, values))
    written = {section: {k: normalise(v) for k, v in (load_yaml(text).get(section) or {}).items()} for section in SECTIONS}
    assert written == overrides, (written, overrides)  # variant.yaml says exactly what was asked
    try:
        write_atomic(folder / VARIANT_FILE, text)
        files = write_variant_files(root, rules, name)
    except BaseException:
        for path in folder.iterdir():
            path.unlink()
        folder.rmdir()
        raise
    print(f"{PREFIX} created configs/{name}/ ({describe(overrides, values)}): {VARIANT_FILE} {' '.join(files)}", file=sys.stderr)


def check_new(root: Path, rules: Rules, base: str, name: str, overrides: dict) -> None:
    check_name(name)
    check_base(root, base)
    if (configs(root) / name).exists():
        raise VariantError(f"configs/{name} already exists",
                           f"pick another NAME, or edit configs/{name}/{VARIANT_FILE} and run make variants")
    base_dir = configs(root) / base
    for section, values in overrides.items():
        for key, value in values.items():
            if not (base_dir / SECTIONS[section]).is_file():
                raise VariantError(f"configs/{base}/{SECTIONS[section]} does not exist, so '{key}' cannot be set there",
                                   f"set it in another config (CONFIG=sft|export|deploy|eval|requirements)")
            rules.check(section, key, value, f"SET {key}")


def cmd_new(root: Path, rules: Rules, args) -> int:
    overrides = parse_set(args.set, args.config)
    check_new(root, rules, args.base, args.name, overrides)
    values = base_values(root, args.base)
    for section, items in overrides.items():
        for key, value in items.items():
            if values[section].get(key) == value:
                print(f"{PREFIX} warning: {key}={flow(value)} is the base's value already", file=sys.stderr)
    create_variant(root, rules, args.base, args.name, overrides, args.why)
    return 0


def parse_grid(text: str) -> list[list[tuple[str, str, list[str]]]]:
    """GRID="k=v1,v2 k1=a,b+k2=c,d": axes (whitespace), keys that vary together (+, zipped)."""
    axes = []
    for axis in (text or "").split():
        keys = []
        for part in axis.split("+"):
            key, sep, values = part.partition("=")
            if not sep or not key or not values:
                raise VariantError(f"GRID axis '{part}' is not key=value,value,...",
                                   'e.g. GRID="lora_rank=4,8,16+lora_alpha=16,32,64 learning_rate=5e-5,2e-4"')
            section = "sft"
            head, dot, tail = key.partition(".")
            if dot and head in SECTIONS:
                section, key = head, tail
            keys.append((section, key, values.split(",")))
        lengths = {len(values) for _, _, values in keys}
        if len(lengths) != 1:
            raise VariantError(f"GRID axis '{axis}': keys joined with + vary together and need as many values each",
                               "give each key of the axis the same number of values")
        axes.append(keys)
    if not axes:
        raise VariantError("GRID is empty", 'e.g. GRID="lora_rank=4,8,16+lora_alpha=16,32,64 max_length=1024,2048"')
    return axes


def grid_suffix(key: str, text: str) -> str:
    return f"{GRID_NAMES.get(key, key)}{text}"


def cmd_grid(root: Path, rules: Rules, args) -> int:
    check_base(root, args.base)
    values = base_values(root, args.base)
    plan, skipped = [], []
    for axis in parse_grid(args.grid):
        for index in range(len(axis[0][2])):
            overrides: dict = {section: {} for section in SECTIONS}
            for section, key, texts in axis:
                overrides[section][key] = parse_value(texts[index])
            if all(values[s].get(k) == v for s, items in overrides.items() for k, v in items.items()):
                skipped.append(", ".join(f"{k}={texts[index]}" for _, k, texts in axis))
                continue
            section, key, texts = axis[0]
            name = f"{args.base}-{grid_suffix(key, texts[index])}"
            plan.append((name, overrides))
    names = [name for name, _ in plan]
    for name in names:
        if names.count(name) > 1:
            raise VariantError(f"GRID makes the name {name} twice",
                               "a zipped axis is named after its first key: put the key whose values differ first")
    # A variant that runs these very settings may exist already, under this name or another
    # (gpt-oss-20b-sft-len2048 is the grid's gpt-oss-20b-sft-v1-len2048): it is kept, not
    # duplicated. What runs: the configs; requirements.env only states what a run needs.
    def runs(overrides: dict) -> str:
        return repr(sorted((s, sorted(v.items())) for s, v in overrides.items() if s != "requirements"))
    existing = {}
    for other in variant_names(root):
        variant = read_variant(root, other)
        if variant["from"] == args.base:
            existing.setdefault(runs(variant["overrides"]), other)
    created, kept, todo, order = [], [], [], []
    for name, overrides in plan:
        same = existing.get(runs(overrides))
        order.append(same or name)
        if same:
            kept.append(same)
            continue
        check_new(root, rules, args.base, name, overrides)
        todo.append((name, overrides))
    why = args.why or f"one factor of the grid \"{args.grid}\" over {args.base}, the others at its values (make new-grid)"
    for name, overrides in todo:
        create_variant(root, rules, args.base, name, overrides, why)
        created.append(name)
    for item in skipped:
        print(f"{PREFIX} {item}: the base's own value(s); {args.base} is that run", file=sys.stderr)
    for name in kept:
        print(f"{PREFIX} configs/{name}/ exists with these settings: kept", file=sys.stderr)
    print(f"{PREFIX} grid over {args.base}: {len(created)} created, {len(kept)} kept"
          + (f"; run them: make sweep EXPS=\"{' '.join(order)}\"" if plan else ""),
          file=sys.stderr)
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repo-root", default=str(Path(__file__).resolve().parents[2]))
    parser.add_argument("--machine-keys", action="append", default=[], help="CMD=KEY:SETTING KEY:SETTING ...")
    parser.add_argument("--requirement-keys", default="")
    parser.add_argument("--bench-keys", default="")
    parser.add_argument("--pilot-keys", default="")
    commands = parser.add_subparsers(dest="command", required=True)
    generate = commands.add_parser("generate")
    generate.add_argument("--check", action="store_true")
    generate.add_argument("names", nargs="*")
    new = commands.add_parser("new")
    new.add_argument("--from", dest="base", default="")
    new.add_argument("--name", default="")
    new.add_argument("--set", default="")
    new.add_argument("--config", default="sft")
    new.add_argument("--why", default="")
    grid = commands.add_parser("grid")
    grid.add_argument("--from", dest="base", default="")
    grid.add_argument("--grid", default="")
    grid.add_argument("--why", default="")
    args = parser.parse_args(argv)
    root = Path(args.repo_root)
    rules = Rules(root, args.machine_keys, args.requirement_keys, args.bench_keys, args.pilot_keys)
    try:
        if args.command == "generate":
            return cmd_generate(root, rules, args.names, args.check)
        if args.command == "new":
            if not args.base or not args.name:
                raise VariantError("new-exp needs FROM and NAME",
                                   'make new-exp FROM=gpt-oss-20b-sft-v1 NAME=gpt-oss-20b-sft-r32 SET="lora_rank=32 lora_alpha=128"')
            return cmd_new(root, rules, args)
        if not args.base:
            raise VariantError("new-grid needs FROM", 'make new-grid FROM=gpt-oss-20b-sft-v1 GRID="lora_rank=4,8+lora_alpha=16,32"')
        return cmd_grid(root, rules, args)
    except VariantError as error:
        print(f"{PREFIX} error: {error.message}", file=sys.stderr)
        if error.fix:
            print(f"{PREFIX} fix: {error.fix}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
