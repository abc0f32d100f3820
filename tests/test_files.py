"""lab.files: an atomic write is whole or absent, and leaves no temp file behind."""
import importlib
import os
import re
import stat
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts" / "py"))
from lab import files  # noqa: E402


def test_write_atomic_replaces_whole(tmp_path):
    target = tmp_path / "sub" / "out.json"
    files.write_json_atomic(target, {"名称": 1})
    assert target.read_text(encoding="utf-8") == '{\n  "名称": 1\n}\n'
    files.write_atomic(target, "second")
    assert target.read_text() == "second"
    assert sorted(p.name for p in target.parent.iterdir()) == ["out.json"]


def test_failed_write_keeps_old_content_and_no_temp_file(tmp_path, monkeypatch):
    target = tmp_path / "out.txt"
    target.write_text("old")

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(files.os, "replace", broken_replace)
    with pytest.raises(OSError):
        files.write_atomic(target, "new")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_sha256_file_matches_bytes(tmp_path):
    target = tmp_path / "blob"
    target.write_bytes(b"abc" * 1000)
    assert files.sha256_file(target) == files.sha256_bytes(b"abc" * 1000)


def test_a_new_file_gets_the_usual_permissions_and_a_replaced_one_keeps_its_own(tmp_path):
    fresh = tmp_path / "fresh.yaml"
    files.write_atomic(fresh, "a: 1\n")
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o666 & ~umask  # not mkstemp's 0600
    fresh.chmod(0o640)
    files.write_atomic(fresh, "a: 2\n")
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o640


def test_write_if_changed_leaves_an_equal_file_alone(tmp_path):
    target = tmp_path / "spec.txt"
    assert files.write_if_changed(target, "x\n")
    os.utime(target, (1, 1))
    assert not files.write_if_changed(target, "x\n")
    assert target.stat().st_mtime == 1
    assert files.write_if_changed(target, "y\n") and target.read_text() == "y\n"


@pytest.mark.parametrize("program, function", [
    ("check_remote", "write_json_atomic"), ("eval_result", "write_json_atomic"), ("heldout_set", "write_atomic"),
    ("variant", "write_atomic"), ("fingerprint", "write_if_changed"), ("fingerprint", "sha256_file"),
    ("fetch_psydt", "write_folder_atomic"), ("fetch_cpsycoune", "write_folder_atomic"), ("fetch_cpsyexam", "write_folder_atomic"),
    ("config", "load_yaml"), ("eval_suite", "load_yaml"), ("variant", "load_yaml"),
])
def test_the_programs_use_the_shared_functions(program, function):
    module = importlib.import_module(program)
    assert getattr(module, function) is getattr(files, function)


def test_no_program_writes_or_hashes_files_its_own_way():
    """Atomic writes, file hashes, folders put in place whole and YAML reading are lab.files' alone."""
    programs = Path(files.__file__).resolve().parents[1]
    own_way = re.compile(r"\btempfile\b|os\.replace\(|\.replace\(path\)|\.rename\(|yaml\.(safe_)?load\("
                         r"|def (write_atomic|write_json_atomic|write_folder_atomic|sha256_file|load_yaml)")
    found = [str(path.relative_to(programs)) for path in sorted(programs.rglob("*.py"))
             if path.name != "files.py" and own_way.search(path.read_text(encoding="utf-8"))]
    assert found == []


def test_a_folder_is_put_in_place_whole_and_a_copy_finished_first_is_kept(tmp_path):
    out = tmp_path / "sets" / "psydt"
    out.parent.mkdir()
    files.write_folder_atomic(out, {"a.jsonl": "1\n", "SOURCE.json": "{}\n"})
    assert sorted(p.name for p in out.iterdir()) == ["SOURCE.json", "a.jsonl"]
    # Another experiment of a sweep finished the same set first: its copy stays, ours is dropped.
    files.write_folder_atomic(out, {"a.jsonl": "2\n", "SOURCE.json": "{}\n"})
    assert (out / "a.jsonl").read_text() == "1\n"
    assert sorted(p.name for p in out.parent.iterdir()) == ["psydt"]


def test_a_folder_that_cannot_be_put_in_place_is_an_error_and_leaves_nothing(tmp_path):
    out = tmp_path / "psydt"
    out.mkdir()
    (out / "notes.txt").write_text("not a fetched set")
    with pytest.raises(OSError):
        files.write_folder_atomic(out, {"a.jsonl": "1\n", "SOURCE.json": "{}\n"})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["psydt"]
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]
