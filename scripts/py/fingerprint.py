"""Fingerprints of what each step of an experiment is made from (DVC's stage deps
and params, dvc.lock's record), so a changed config, dataset, model, lock or
upstream output is noticed, and a result is reused only when it provably matches.

  fingerprint.py compute SPEC|-      one line per step: NAME<TAB>DIGEST<TAB>STATUS<TAB>STORE<TAB>PRODUCER,
                                     writes OUT_DIR/NAME.json only when it changed
  fingerprint.py diff OLD.json NEW.json   what changed, one `what: old -> new` a line
  fingerprint.py store-spec CACHE ROOT GROUPS     compute (spec on stdin), and keep the spec
  fingerprint.py compute-cached CACHE ROOT GROUPS OUT_DIR
                                     compute from the kept spec; exit 3 when it may be stale

The spec comes from scripts/lib/fingerprint.sh, which builds each step's command
with the same builders the steps run: `key<TAB>value` lines, `step` starting a
step, list keys repeated (see read_spec). A step's inputs are:
  configs   each native config file: its sha256 and its parsed content
  command   the argv without location flags (where it writes, which port), env likewise
  model     a local folder: its small files' sha256 and the big files' sizes;
            a hub id: the id and, when preflight asked the hub, its revision
  datasets  local files by sha256, hub ids by id (and revision when known)
  files     other files or folders whose content matters (question sets, plugins, code)
  settings  step settings that are not in a config (CHECKPOINT=last, eval settings)
  lock      the lock file the venv was built from
  upstream  the digests of the steps it consumes (export <- train, eval <- export)
The digest is the sha256 of the canonical JSON of the inputs.

A step marked `identity shared` (the base model's serving and evaluations) is the same
for every experiment that asks the same questions of the same model: its inputs are
taken without what only names or locates the experiment (the spec's `name` lines: its
config folder, run and results folders, served name, server address) and each config
by its parsed content alone, so a variant's generated copy (another path, a header
comment) is the same input (shared_identity). Its digest keys the store of shared
evaluations ($RESULTS_ROOT/.store/<digest>, lib/store.sh): STORE is the status of that
entry (as STATUS, below) and PRODUCER the experiment that made it (lab-store.json), for
the other steps "-".

STATUS compares the current inputs with what the step recorded next to its outputs:
  done     its completion marker holds this digest
  partial  its inputs record holds this digest, but it did not complete (resumable)
  changed  its record or marker holds another digest
  unknown  its output folder holds files but no record (an older or foreign run)
  none     nothing there
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from pathlib import Path

import yaml

from lab import configs
from lab.files import load_yaml, sha256_bytes, sha256_file, write_if_changed

SMALL_FILE_BYTES = 64 * 1024 * 1024  # larger files (weights) are identified by size
MODEL_KEY = "model"
DATASET_KEY = "dataset"


def canonical(value) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


class Repo:
    def __init__(self, root: str, hub_revisions: str | None, location_roots: list[str] | None = None):
        self.root = Path(root)
        # NAME=PATH of the output roots: a path under one is named by the root, not the disk.
        self.roots = sorted((tuple(item.split("=", 1)) for item in location_roots or [] if "=" in item),
                            key=lambda pair: -len(pair[1]))
        self.hub = {}
        if hub_revisions and Path(hub_revisions).is_file():
            try:
                self.hub = json.loads(Path(hub_revisions).read_text())
            except ValueError:
                self.hub = {}

    def path(self, name: str) -> Path:
        p = Path(os.path.expanduser(name))
        return p if p.is_absolute() else self.root / p

    def rel(self, path: Path | str) -> str:
        return self.located(str(path))

    def located(self, text: str) -> str:
        """TEXT with the repo root left out and an output root's path replaced by its name."""
        for name, root in self.roots:
            if root:
                text = text.replace(root.rstrip(os.sep) + os.sep, f"${{{name}}}{os.sep}")
        return text.replace(str(self.root) + os.sep, "")

    def config(self, name: str) -> dict:
        path = self.path(name)
        data = path.read_bytes()
        try:
            content = load_yaml(data) or {}
        except yaml.YAMLError as err:
            raise SystemExit(f"{self.rel(path)} is not valid YAML: {err}")
        return {"sha256": sha256_bytes(data), "content": content}

    def tree(self, name: str) -> dict:
        """A file's sha256, or a folder's files: small ones by sha256, big ones by size."""
        path = self.path(name)
        if path.is_file():
            return {"sha256": sha256_file(path)}
        if not path.is_dir():
            return {"missing": True}
        files = {}
        for item in sorted(path.rglob("*")):
            if item.is_file() and not item.name.startswith("lab-"):
                size = item.stat().st_size
                key = str(item.relative_to(path))
                files[key] = sha256_file(item) if size <= SMALL_FILE_BYTES else f"size:{size}"
        return {"files": files}

    def hub_entry(self, parsed: configs.SwiftEntry) -> dict:
        """A hub id by its id as written, with the revision preflight found for it (hub-revisions.json,
        which names the hub id without hub prefix, subsets or sample count)."""
        entry = self.hub.get(parsed.kind) or {}
        revision = entry.get("revision") if entry.get("id") in (parsed.raw, parsed.repo_id) else None
        return {"id": parsed.raw, "hub": entry.get("hub", "modelscope") if revision else None, "revision": revision}

    def model(self, ident: str) -> dict:
        parsed = configs.parse_model(ident, self.root)
        if parsed.local:
            return {"id": self.rel(self.path(parsed.path)), **self.tree(parsed.path)}
        return self.hub_entry(parsed)

    def dataset(self, entry: str) -> dict:
        parsed = configs.parse_dataset(entry, self.root)
        if parsed.local:
            return {"id": entry, **self.tree(parsed.path)}
        return self.hub_entry(parsed)


def as_list(value) -> list:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def step_inputs(step: dict, repo: Repo, digests: dict) -> dict:
    inputs: dict = {"configs": {}, "command": step.get("argv", []), "env": step.get("env", [])}
    contents = []
    for name in step.get("configs", []):
        entry = repo.config(name)
        inputs["configs"][repo.rel(repo.path(name))] = entry
        contents.append(entry["content"] if isinstance(entry["content"], dict) else {})
    if step.get("model_config"):
        ident = step.get("model_ref") or (repo.config(step["model_config"])["content"] or {}).get(MODEL_KEY)
        inputs["model"] = repo.model(str(ident)) if ident else None
    if step.get("datasets_from"):
        override = step.get("dataset_override")
        entries = [override] if override else as_list((repo.config(step["datasets_from"])["content"] or {}).get(DATASET_KEY))
        inputs["datasets"] = [repo.dataset(str(e)) for e in entries]
    files = list(step.get("files", []))
    for content in contents:  # ms-swift plugins change what the tool does; a system prompt file too
        files += [str(p) for p in as_list(content.get("external_plugins"))]
        system = content.get("system")
        if isinstance(system, str) and system.endswith(".txt"):
            files.append(system)
        deepspeed = content.get("deepspeed")  # a DeepSpeed config of one's own (a preset is in the lock)
        if isinstance(deepspeed, str) and deepspeed.endswith(".json"):
            files.append(deepspeed)
    inputs["files"] = {repo.rel(repo.path(f)): repo.tree(f) for f in files}
    if step.get("settings"):
        inputs["settings"] = step["settings"]
    if step.get("lock"):
        inputs["lock"] = {"file": repo.rel(repo.path(step["lock"])), **repo.tree(step["lock"])}
    if step.get("upstream"):
        inputs["upstream"] = {name: digests.get(name) for name in step["upstream"]}
    if step.get("reads"):
        inputs["reads"] = {repo.rel(p): recorded_digest(Path(p)) for p in step["reads"]}
    return inputs


def json_container(text: str):
    """TEXT parsed, when it is a JSON object or list (an argument such as --dataset-args)."""
    if text[:1] not in ("{", "["):
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, (dict, list)) else None


def unnamed(value, names: list[tuple[str, str]], keep: bool = False):
    """VALUE with each string that is a name, or a path under one, given as its placeholder
    (in dict keys, lists, and the strings of a JSON argument too, written canonically; with
    KEEP, a JSON argument without any name stays as it was written)."""
    if isinstance(value, dict):
        return {unnamed(key, names, keep): unnamed(item, names, keep) for key, item in value.items()}
    if isinstance(value, list):
        return [unnamed(item, names, keep) for item in value]
    if not isinstance(value, str):
        return value
    parsed = json_container(value)
    if parsed is not None:
        replaced = unnamed(parsed, names, keep)
        return value if keep and replaced == parsed else canonical(replaced)
    for name, placeholder in names:
        if value == name:
            return placeholder
        if value.startswith(name.rstrip("/") + "/"):
            return placeholder + value[len(name.rstrip("/")):]
    return value


def shared_identity(inputs: dict, names: list[tuple[str, str]]) -> dict:
    """The inputs of a step whose outputs experiments share: the names and locations of the
    experiment (NAMES: value, placeholder) replaced by placeholders, each config by its parsed
    content alone (a generated copy's header comment changes no answer)."""
    inputs = dict(inputs)
    inputs["configs"] = {path: {"content": entry.get("content")} for path, entry in (inputs.get("configs") or {}).items()}
    return unnamed(inputs, names)


def spec_names(spec: dict, repo: Repo, key: str = "name") -> list[tuple[str, str]]:
    """The spec's `name` (or `location_value`) lines (VALUE<TAB>PLACEHOLDER) as the inputs spell
    them (located), longest first, so a path is replaced by its own name before a shorter one's."""
    names = []
    for line in spec.get(key, []):
        value, _, placeholder = line.partition("\t")
        if value and placeholder:
            names += [(repo.located(value), placeholder), (value, placeholder)]
    return sorted(set(names), key=lambda pair: -len(pair[0]))


def read_json(path: Path) -> dict | None:
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def recorded_digest(path: Path) -> str | None:
    record = read_json(path)
    return record.get("inputs_digest") if record else None


def status(step: dict, digest: str) -> str:
    return outputs_status(step.get("marker"), step.get("record"), step.get("outputs"), digest)


def store_status(step: dict, digest: str, store: str | None) -> tuple[str, str]:
    """The state of a shared step's store entry STORE/DIGEST (as status) and who made it."""
    if step.get("identity") != "shared" or not store or not step.get("marker"):
        return "-", "-"
    entry = Path(store) / digest
    state = outputs_status(str(entry / Path(step["marker"]).name), str(entry / "lab-inputs.json"), str(entry), digest)
    producer = (read_json(entry / "lab-store.json") or {}).get("experiment") or "-"
    return state, producer


def outputs_status(marker: str | None, record: str | None, outputs: str | None, digest: str) -> str:
    marker = Path(marker) if marker else None
    record = Path(record) if record else None
    outputs = Path(outputs) if outputs else None
    marked = recorded_digest(marker) if marker else None
    recorded = (read_json(record) or {}).get("digest") if record else None
    if marked == digest:
        return "done"
    if recorded == digest:
        return "partial"
    if marked or recorded:
        return "changed"
    if (marker and marker.exists()) or (outputs and outputs.is_dir() and any(outputs.iterdir())):
        return "unknown"
    return "none"


LIST_KEYS = {"arg": "argv", "env": "cmd_env", "secret_env": "secret_env", "config": "configs", "file": "files",
             "upstream": "upstream", "read": "reads", "setting": "settings"}
SPEC_LISTS = ("location_flag", "location_env", "location_root", "location_value", "name")


def read_spec(lines) -> dict:
    spec: dict = {"steps": [], **{key: [] for key in SPEC_LISTS}}
    step = None
    for number, line in enumerate(lines, 1):
        line = line.rstrip("\n")
        if not line:
            continue
        key, sep, value = line.partition("\t")
        if not sep:
            raise SystemExit(f"spec line {number}: no tab in {line!r}")
        if key == "step":
            step = {"name": value}
            spec["steps"].append(step)
        elif key in SPEC_LISTS:
            spec[key].append(value)
        elif step is None:
            spec[key] = value
        elif key in LIST_KEYS:
            step.setdefault(LIST_KEYS[key], []).append(value)
        else:
            step[key] = value
    return spec


def compared_command(step: dict, spec: dict, repo: Repo) -> None:
    """argv and env without the location flags (with their values) and variables."""
    flags, names = set(spec["location_flag"]), set(spec["location_env"])
    argv, skip = [], False
    for word in step.get("argv", []):
        if skip:
            skip = False
        elif word in flags:
            skip = True
        else:
            argv.append(repo.located(word))
    step["argv"] = argv
    step["env"] = [repo.located(pair) for pair in step.get("cmd_env", []) if pair.split("=", 1)[0] not in names]
    settings = step.get("settings")
    if isinstance(settings, list):
        step["settings"] = dict(item.split("=", 1) for item in settings)


def printed_command(step: dict, repo: Repo) -> str:
    words = [f"{name}=\"${name}\"" for name in step.get("secret_env", [])]  # never a value
    words = step.get("cmd_env", []) + words + step.get("argv", [])
    return " ".join(words).replace(str(repo.root) + os.sep, "")


def compute(spec_path: str) -> int:
    return compute_text(sys.stdin.read() if spec_path == "-" else Path(spec_path).read_text())


def compute_text(text: str) -> int:
    spec = read_spec(text.splitlines())
    repo = Repo(spec["repo"], spec.get("hub_revisions"), spec["location_root"])
    out_dir = Path(spec["out_dir"]) if spec.get("out_dir") else None
    names = spec_names(spec, repo)
    # A value that is where a server listens, inside an argument too (a judge that is the served
    # model names its address): no input of any step.
    locations = spec_names(spec, repo, "location_value")
    digests: dict = {}
    for step in spec["steps"]:
        command = printed_command(step, repo) if step.get("argv") else ""
        compared_command(step, spec, repo)
        step["argv"] = unnamed(step["argv"], locations, keep=True)
        if step.get("datasets_config"):
            step["datasets_from"] = step["datasets_config"]
        inputs = step_inputs(step, repo, digests)
        if step.get("identity") == "shared":
            inputs = shared_identity(inputs, names)
        digest = sha256_bytes(canonical(inputs).encode())
        digests[step["name"]] = digest
        if out_dir is not None:
            document = {"step": step["name"], "digest": digest, "inputs": inputs, "command_line": command}
            write_if_changed(out_dir / f"{step['name']}.json",
                             json.dumps(document, ensure_ascii=False, indent=2, sort_keys=True) + "\n")
        store, producer = store_status(step, digest, spec.get("store"))
        print(f"{step['name']}\t{digest}\t{status(step, digest)}\t{store}\t{producer}")
    return 0


def flatten(value, prefix: str = "") -> dict:
    if isinstance(value, dict) and value:
        out = {}
        for key, item in value.items():
            out.update(flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        return out
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        out = {}
        for index, item in enumerate(value):
            out.update(flatten(item, f"{prefix}[{index}]"))
        return out
    return {prefix: value}


def short(value) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    if isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value):
        return value[:12]
    return text if len(text) <= 80 else text[:77] + "..."


def command_facts(argv: list) -> dict:
    """An argv as `command.--flag: value` facts, other words by position."""
    facts, index = {}, 0
    while index < len(argv):
        word = str(argv[index])
        if word.startswith("--"):
            has_value = index + 1 < len(argv) and not str(argv[index + 1]).startswith("--")
            facts[f"command.{word}"] = argv[index + 1] if has_value else True
            index += 2 if has_value else 1
        else:
            facts[f"command[{index}]"] = word
            index += 1
    return facts


def describe_changes(old: dict, new: dict) -> list[str]:
    """`what: old -> new` lines; a config's content by key, its sha256 left out."""
    def facts(inputs: dict) -> dict:
        flat = flatten({k: v for k, v in inputs.items() if k not in ("configs", "command")})
        flat.update(command_facts(inputs.get("command") or []))
        for name, entry in (inputs.get("configs") or {}).items():
            content = entry.get("content") if isinstance(entry, dict) else None
            if isinstance(content, dict):
                for key, value in content.items():
                    flat[f"{name}: {key}"] = value
        return flat

    before, after = facts(old or {}), facts(new or {})
    lines = []
    for key in sorted(set(before) | set(after)):
        if before.get(key) != after.get(key):
            lines.append(f"{key}: {short(before.get(key, '(absent)'))} -> {short(after.get(key, '(absent)'))}")
    return lines


def diff(old_path: str, new_path: str) -> int:
    old = read_json(Path(old_path)) or {}
    new = read_json(Path(new_path)) or {}
    lines = describe_changes(old.get("inputs") or {}, new.get("inputs") or {})
    print("\n".join(lines) if lines else "(no recorded inputs to compare)" if not old else "(no difference)")
    return 0


# ---------------------------------------------------------------- the spec, cached
# Building the spec runs every command builder in bash (about 0.9 s for the smoke run);
# its text depends only on the environment, the env file, the repo's code and configs,
# and whether the paths it names exist. When none of these changed since the spec was
# stored, the stored spec is the spec (DVC's stat cache, for the spec): a finished make
# starts no builder. Statuses are always computed afresh from the outputs.

WATCHED = ("Makefile", "scripts", "configs", "env", "report")
# Set by make, the shell or the lock per process; never read by a command builder.
VOLATILE_ENV = {"_", "PWD", "OLDPWD", "SHLVL", "MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES", "MAKE_TERMOUT",
                "MAKE_TERMERR", "MAKE_RESTARTS", "LAB_RUN_OWNER", "STEP_NAME", "COLUMNS", "LINES", "INPUTS_DIR",
                "TMPDIR", "BATS_TMPDIR"}


# A file changed less than this long before the spec was stored could change again within
# the same mtime tick (git's "racy" files): then the spec is not kept.
RACY_SECONDS = 2.0


def spec_key(root: Path, groups: str, spec_text: str) -> tuple[str, int]:
    """What the spec's text is made from: groups, environment, env file, code and configs
    (each file's size and mtime), and which of the paths the spec names exist; and the
    newest mtime (ns) among those files."""
    newest = 0
    digest = hashlib.sha256(f"groups={groups}\n".encode())
    for name in sorted(os.environ):
        if name not in VOLATILE_ENV and not name.startswith("BASH_FUNC_"):
            digest.update(f"env {name}={os.environ[name]}\n".encode())
    watched = [root / name for name in WATCHED]
    env_file = os.environ.get("ENV_FILE")
    if env_file:
        watched.append(Path(env_file) if os.path.isabs(env_file) else root / env_file)
    for top in watched:
        for path in [top] if not top.is_dir() else sorted(p for p in top.rglob("*") if "__pycache__" not in p.parts):
            try:
                info = path.stat()
                digest.update(f"file {path} {info.st_size} {info.st_mtime_ns}\n".encode())
                newest = max(newest, info.st_mtime_ns)
            except OSError:
                digest.update(f"absent {path}\n".encode())
    for line in spec_text.splitlines():
        key, _, value = line.partition("\t")
        if key in ("out_dir",) or "/" not in value or "\n" in value or len(value) > 4096:
            continue
        digest.update(f"exists {value} {path_exists(value, root)}\n".encode())
    return digest.hexdigest(), newest


def path_exists(value: str, root: Path) -> bool:
    """Whether a spec value names a path that exists (an argument that is no path cannot)."""
    try:
        return (Path(value) if value.startswith("/") else root / value).exists()
    except (OSError, ValueError):  # too long a name, a NUL byte: no path
        return False


def without_out_dir(spec_text: str) -> str:
    return "\n".join(line for line in spec_text.splitlines() if not line.startswith("out_dir\t"))


def compute_cached(cache: str, root: str, groups: str, out_dir: str) -> int:
    """Prints the statuses from the stored spec (exit 0), or exits 3 when it may be stale."""
    stored = read_json(Path(cache))
    if not stored or stored.get("key") != spec_key(Path(root), groups, stored.get("spec", ""))[0]:
        return 3
    return compute_text(f"out_dir\t{out_dir}\n" + stored["spec"])


def store_spec(cache: str, root: str, groups: str) -> int:
    """Stores the spec on stdin (without its out_dir) with its key, then computes as compute does."""
    text = sys.stdin.read()
    spec = without_out_dir(text)
    path = Path(cache)
    key, newest = spec_key(Path(root), groups, spec)
    if time.time_ns() - newest < RACY_SECONDS * 1e9:
        path.unlink(missing_ok=True)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_if_changed(path, json.dumps({"key": key, "spec": spec}) + "\n")
    return compute_text(text)


def main(argv: list[str]) -> int:
    if len(argv) == 2 and argv[0] == "compute":
        return compute(argv[1])
    if len(argv) == 5 and argv[0] == "compute-cached":
        return compute_cached(*argv[1:])
    if len(argv) == 4 and argv[0] == "store-spec":
        return store_spec(*argv[1:])
    if len(argv) == 3 and argv[0] == "diff":
        return diff(argv[1], argv[2])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
