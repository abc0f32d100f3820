"""File IO every program shares: writes that are whole or absent, content hashes, YAML read."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path


def _mode_for(path: Path) -> int:
    """The permissions PATH keeps when it is replaced, or a new file's (0666 less the umask):
    not the temp file's 0600."""
    try:
        return path.stat().st_mode & 0o7777
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def write_atomic(path: Path | str, data: bytes | str) -> None:
    """Writes PATH whole or not at all (text as UTF-8): a temp file beside it, then a rename.
    The temp file is removed whatever fails (a full disk, an interrupt); PATH keeps its
    permissions, a new file gets the usual ones."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as stream:
            stream.write(payload)
        os.chmod(tmp, _mode_for(path))
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def write_folder_atomic(out: Path | str, files: dict[str, str]) -> None:
    """FILES (name: UTF-8 text) as the folder OUT, whole or absent: written into a folder of
    this process's own beside it, then renamed. Experiments of a sweep side by side may fetch
    the same set at once: the first to finish provides OUT, the others' copies are dropped,
    never swapped under an evaluation that reads it. The own folder is removed whatever fails."""
    out = Path(out)
    partial = out.with_name(f"{out.name}.partial-{os.getpid()}")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    try:
        for name, text in files.items():
            (partial / name).write_text(text, encoding="utf-8")
        partial.rename(out)
    except OSError:
        if not all((out / name).is_file() for name in files):  # not another process's finished copy
            raise
    finally:
        shutil.rmtree(partial, ignore_errors=True)


def write_json_atomic(path: Path | str, value, indent: int | None = 2) -> None:
    """VALUE as UTF-8 JSON (Chinese kept readable), written atomically, with a final newline;
    indent None: on one line."""
    write_atomic(path, json.dumps(value, ensure_ascii=False, indent=indent) + "\n")


def write_if_changed(path: Path | str, data: bytes | str) -> bool:
    """write_atomic, unless PATH already holds DATA (its time then stays); True when written."""
    path = Path(path)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    if path.is_file() and path.read_bytes() == payload:
        return False
    write_atomic(path, payload)
    return True


def load_yaml(source):
    """YAML text, bytes or an open file as yaml.safe_load reads it (the same values and
    yaml.YAMLError), parsed with libyaml where PyYAML has it: ten times faster, and a make
    step reads its configs several times."""
    import yaml

    return yaml.load(source, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path | str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def rel(path: Path | str, root: Path) -> str:
    """PATH relative to ROOT when it is under it (as reports show paths), else as given."""
    try:
        return str(Path(path).resolve().relative_to(root.resolve()))
    except (ValueError, OSError):
        return str(path)
