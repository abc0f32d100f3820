"""The kept spec of the fingerprints (scripts/py/fingerprint.py spec_key, store-spec,
compute-cached): reused only while nothing it is made from changed."""

import io
import json
import os
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts" / "py"))

import fingerprint as fp  # noqa: E402


@pytest.fixture
def root(tmp_path, monkeypatch):
    for folder in fp.WATCHED[1:]:
        (tmp_path / folder).mkdir()
    (tmp_path / "Makefile").write_text("all:\n")
    (tmp_path / "configs" / "sft.yaml").write_text("lora_rank: 8\n")
    old = time.time() - 60
    for path in [tmp_path / "Makefile", tmp_path / "configs" / "sft.yaml"]:
        os.utime(path, (old, old))
    monkeypatch.setenv("ENV_FILE", "env/x.env")
    return tmp_path


SPEC = "repo\t{root}\nstep\ttrain\narg\tswift\nmodel_ref\tbuild/tiny\n"


def key(root, spec=None):
    return fp.spec_key(root, "eval", spec or SPEC.format(root=root))[0]


def test_the_key_holds_while_nothing_changed(root):
    assert key(root) == key(root)


def test_a_config_edited_to_the_same_size_changes_the_key(root):
    before = key(root)
    (root / "configs" / "sft.yaml").write_text("lora_rank: 4\n")
    assert key(root) != before


def test_the_environment_changes_the_key_but_make_s_own_variables_do_not(root, monkeypatch):
    before = key(root)
    monkeypatch.setenv("MAKELEVEL", "3")
    monkeypatch.setenv("LAB_RUN_OWNER", "12345")
    assert key(root) == before
    monkeypatch.setenv("GPU", "0,1")
    assert key(root) != before


def test_a_path_the_spec_names_coming_into_existence_changes_the_key(root):
    before = key(root)
    (root / "build" / "tiny").mkdir(parents=True)
    assert key(root) != before


def test_the_env_file_anywhere_is_watched(root, monkeypatch, tmp_path_factory):
    elsewhere = tmp_path_factory.mktemp("envs") / "run.env"
    elsewhere.write_text("GPU=6\n")
    monkeypatch.setenv("ENV_FILE", str(elsewhere))
    before = key(root)
    elsewhere.write_text("GPU=7\n")
    assert key(root) != before


def test_stored_spec_is_reused_with_the_current_out_dir_and_a_fresh_file_is_not_kept(root, monkeypatch, capsys):
    cache = root / "cache.json"
    spec = f"repo\t{root}\nout_dir\t{root}/inputs-a\n" + "location_root\tOUTPUT_ROOT=output\nstep\ttrain\narg\tswift\n"
    monkeypatch.setattr(sys, "stdin", io.StringIO(spec))
    assert fp.store_spec(str(cache), str(root), "train") == 0
    stored = json.loads(cache.read_text())
    assert "out_dir" not in stored["spec"]
    capsys.readouterr()
    assert fp.compute_cached(str(cache), str(root), "train", str(root / "inputs-b")) == 0
    assert capsys.readouterr().out.startswith("train\t")
    assert (root / "inputs-b" / "train.json").is_file()
    # Another group, or a changed file: not reused.
    assert fp.compute_cached(str(cache), str(root), "eval", str(root / "inputs-b")) == 3
    (root / "scripts" / "new.sh").write_text("echo\n")
    assert fp.compute_cached(str(cache), str(root), "train", str(root / "inputs-b")) == 3
    # A file changed within the last two seconds may change again within its mtime tick: not kept.
    monkeypatch.setattr(sys, "stdin", io.StringIO(spec))
    assert fp.store_spec(str(cache), str(root), "train") == 0
    assert not cache.exists()


def test_an_argument_that_cannot_be_a_path_is_no_error(root):
    long_json = '{"general_mcq":{"subset_list":[' + ",".join(['"' + "x" * 60 + '"'] * 20) + '],"local_path":"/a/b"}}'
    spec = SPEC.format(root=root) + f"arg\t{long_json}\narg\tnul\x00/byte\n"
    assert key(root, spec) == key(root, spec)
