"""lab.files: an atomic write is whole or absent, and leaves no temp file behind."""
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
