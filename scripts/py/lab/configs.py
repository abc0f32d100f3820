"""The model and dataset entries of an ms-swift config as ms-swift 4.6 reads them, in one place
for the preflight (scripts/preflight.sh through scripts/py/swift_ids.py, and the hub check
scripts/py/check_remote.py) and the fingerprints (scripts/py/fingerprint.py).

A dataset entry: [hf::|ms::]ID_OR_PATH[:SUBSET/SUBSET][#N] (swift/dataset/dataset_syntax.py,
DatasetSyntax.parse): an existing path is taken whole; else the hub prefix is split off, then
`#N` (N rows sampled), then `:SUBSETS`. A model entry: ID_OR_PATH[:SUB_FOLDER]
(swift/utils/hub_utils.py, safe_snapshot_download): a path, or `a:b` as the path a/b, else a
hub id whose sub-folder is after the first colon. Paths are relative to the repository root,
where the tools run. Where the hubs' SDKs cache a repo is here too (cached_location).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

# A dataset entry that looks like a file, though it does not exist: a missing file, not a hub id.
PATH_SUFFIXES = (".jsonl", ".json", ".csv", ".txt")


@dataclass(frozen=True)
class SwiftEntry:
    kind: str  # model or dataset
    raw: str  # as written in the config or the env file
    path: str | None = None  # the local file or folder ms-swift reads (as written), None for a hub id
    repo_id: str = ""  # the hub id, without hub prefix, sub-folder, subsets or sample count
    hub: str = "modelscope"  # the hub it is fetched from (ms-swift: ModelScope unless use_hf)
    subsets: tuple[str, ...] = field(default=())
    sample: int | None = None  # a dataset's #N
    sub_folder: str = ""  # a hub model's folder after the colon
    revision: str | None = None  # a hub model's model_revision

    @property
    def local(self) -> bool:
        return self.path is not None

    def looks_like_a_path(self) -> bool:
        """Not found, but written as a path (absolute, ./, ../, or a data file's suffix)."""
        text = self.raw.split("#", 1)[0] if self.kind == "dataset" else self.raw
        return text.startswith(("/", "./", "../", "~")) or text.endswith(PATH_SUFFIXES)


def exists(path: str, repo_root: Path) -> bool:
    """PATH as the tools open it from the repository root (~ expanded)."""
    expanded = os.path.expanduser(path)
    return os.path.exists(expanded if os.path.isabs(expanded) else repo_root / expanded)


def parse_dataset(raw: str, repo_root: Path, use_hf: bool = False) -> SwiftEntry:
    """A dataset entry as ms-swift reads it (a `#N` that is not a number stays in the name)."""
    hub = "huggingface" if use_hf else "modelscope"
    if exists(raw, repo_root):
        return SwiftEntry("dataset", raw, path=raw, hub=hub)
    text = raw
    prefix, sep, rest = text.partition("::")
    if sep:
        hub = {"hf": "huggingface", "ms": "modelscope"}.get(prefix.lower(), hub)
        text = rest
    sample = None
    if not exists(text, repo_root):
        base, sep, count = text.rpartition("#")
        if sep and count.strip().isdigit():
            text, sample = base, int(count)
    subsets: tuple[str, ...] = ()
    if not exists(text, repo_root):
        name, sep, listed = text.partition(":")
        if sep:
            text, subsets = name, tuple(s.strip() for s in listed.split("/"))
    text = text.strip()
    if exists(text, repo_root):
        return SwiftEntry("dataset", raw, path=text, hub=hub, subsets=subsets, sample=sample)
    return SwiftEntry("dataset", raw, repo_id=text, hub=hub, subsets=subsets, sample=sample)


def parse_model(raw: str, repo_root: Path, use_hf: bool = False, revision: str | None = None) -> SwiftEntry:
    """A model entry as ms-swift reads it: a path, `a:b` as the path a/b, else a hub id[:sub_folder]."""
    hub = "huggingface" if use_hf else "modelscope"
    for path in (raw, "/".join(raw.split(":", 1))):
        if exists(path, repo_root):
            return SwiftEntry("model", raw, path=path, hub=hub)
    repo_id, _, sub_folder = raw.partition(":")
    return SwiftEntry("model", raw, repo_id=repo_id, hub=hub, sub_folder=sub_folder, revision=revision)


def truthy(value) -> bool:
    return str(value).strip().lower() in ("1", "true", "yes", "on")


def as_list(value) -> list:
    if value is None or value == "":
        return []
    return value if isinstance(value, list) else [value]


def config_entries(config: dict, repo_root: Path, model: str | None = None, dataset: str | None = None) -> list[SwiftEntry]:
    """The model and the datasets a training config (sft.yaml's content) names, MODEL and
    DATASET (the env file's) instead of its own when given; its use_hf, or USE_HF, picks the hub."""
    use_hf = truthy(config.get("use_hf", False)) or truthy(os.environ.get("USE_HF", "0"))
    entries = []
    model = model or config.get("model")
    if model:
        revision = config.get("model_revision")
        entries.append(parse_model(str(model), repo_root, use_hf, str(revision) if revision else None))
    datasets = [dataset] if dataset else as_list(config.get("dataset"))
    return entries + [parse_dataset(str(item), repo_root, use_hf) for item in datasets]


def read_entries(sft_yaml: Path, repo_root: Path, model: str | None = None, dataset: str | None = None) -> list[SwiftEntry]:
    from lab.files import load_yaml  # PyYAML here: check_remote.py's SwanLab check runs without it

    with open(sft_yaml, encoding="utf-8") as stream:
        config = load_yaml(stream) or {}
    return config_entries(config, repo_root, model, dataset)


def non_empty_dir(path: Path) -> bool:
    try:
        return path.is_dir() and any(path.iterdir())
    except OSError:
        return False


def cached_location(entry: SwiftEntry, cache_root: Path) -> Path | None:
    """Where the hub's SDK keeps this repo under CACHE_ROOT, if it is there.

    ModelScope (MODELSCOPE_CACHE=CACHE_ROOT/modelscope): modelscope_hub's layout
    {models,datasets}/OWNER--NAME/snapshots/REV, the older OWNER/NAME (dots as ___)
    that modelscope_hub still reuses, and MsDataset's datasets/OWNER___NAME.
    Hugging Face (HF_HOME=CACHE_ROOT/huggingface): hub/{models,datasets}--OWNER--NAME/snapshots/REV
    and the datasets library's datasets/OWNER___NAME.
    """
    if entry.local:
        return None
    owner, _, name = entry.repo_id.partition("/")
    plural = entry.kind + "s"
    if entry.hub == "modelscope":
        root = cache_root / "modelscope"
        snapshots = [root / plural / f"{owner}--{name}" / "snapshots"]
        candidates = [root / plural / owner / name.replace(".", "___"),
                      root / "hub" / plural / owner / name.replace(".", "___")]
    else:
        root = cache_root / "huggingface"
        snapshots = [root / "hub" / f"{plural}--{owner}--{name}" / "snapshots"]
        candidates = []
    if entry.kind == "dataset":
        candidates.append(root / "datasets" / f"{owner}___{name}")
    for directory in snapshots:
        if directory.is_dir():
            for snapshot in sorted(directory.iterdir()):
                if non_empty_dir(snapshot):
                    return snapshot
    return next((path for path in candidates if non_empty_dir(path)), None)
