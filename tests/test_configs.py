"""scripts/py/lab/configs.py: ms-swift's model and dataset entries, parsed once for preflight
(scripts/py/swift_ids.py), the hub check and the fingerprints; checked against ms-swift's own
DatasetSyntax.parse (the installed one, when the venv has it). And eval.yaml's rule, owned by
scripts/py/eval_suite.py: a benchmark's settings over the defaults, its group."""
import importlib.util
import re
import subprocess
import sys
import types
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts" / "py"))

import eval_suite  # noqa: E402
from lab import configs  # noqa: E402

DATASETS = ["data/train.jsonl", "data/train.jsonl#50", "hf::data/train.jsonl", "data/dir:sub1/sub2#3",
            "org/name", "org/name#500", "hf::org/name", "ms::org/name:default#10", "HF::org/name:a/b",
            "org/name:sub", "xx::org/name", "data/missing.jsonl"]


@pytest.fixture
def repo(tmp_path):
    (tmp_path / "data" / "dir").mkdir(parents=True)
    (tmp_path / "data" / "train.jsonl").write_text("{}\n")
    (tmp_path / "models" / "base" / "sub").mkdir(parents=True)
    return tmp_path


@pytest.mark.parametrize("raw, path, repo_id, hub, subsets, sample", [
    ("data/train.jsonl", "data/train.jsonl", "", "modelscope", (), None),
    ("data/train.jsonl#50", "data/train.jsonl", "", "modelscope", (), 50),
    ("data/dir:sub1/sub2#3", "data/dir", "", "modelscope", ("sub1", "sub2"), 3),
    ("hf::org/name:a/b#10", None, "org/name", "huggingface", ("a", "b"), 10),
    ("ms::org/name", None, "org/name", "modelscope", (), None),
    ("org/name#all", None, "org/name#all", "modelscope", (), None),  # not a count: part of the name
])
def test_dataset_entries(repo, raw, path, repo_id, hub, subsets, sample):
    entry = configs.parse_dataset(raw, repo)
    assert (entry.path, entry.repo_id, entry.hub, entry.subsets, entry.sample) == (path, repo_id, hub, subsets, sample)


def test_model_entries(repo):
    assert configs.parse_model("models/base", repo).path == "models/base"
    assert configs.parse_model("models/base:sub", repo).path == "models/base/sub"  # a:b as the path a/b
    hub = configs.parse_model("openai-mirror/gpt-oss-20b:original", repo, use_hf=True, revision="abc")
    assert (hub.local, hub.repo_id, hub.sub_folder, hub.hub, hub.revision) == (
        False, "openai-mirror/gpt-oss-20b", "original", "huggingface", "abc")


def ms_swift_dataset_syntax():
    """ms-swift's DatasetSyntax, loaded from its file alone (importing swift takes a minute)."""
    spec = importlib.util.find_spec("swift")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("ms-swift is not installed here")
    source = Path(spec.submodule_search_locations[0]) / "dataset" / "dataset_syntax.py"
    text = source.read_text(encoding="utf-8")
    stub = "DATASET_MAPPING, DatasetMeta = {}, object"
    text, count = re.subn(r"^from \.dataset_meta import DATASET_MAPPING, DatasetMeta$", stub, text, flags=re.M)
    assert count == 1, f"{source}: its imports changed; look at how it parses a dataset entry"
    module = types.ModuleType("dataset_syntax")
    exec(compile(text, str(source), "exec"), module.__dict__)
    return module.DatasetSyntax


@pytest.mark.parametrize("raw", DATASETS)
def test_datasets_parse_as_ms_swift_parses_them(repo, monkeypatch, raw):
    syntax = ms_swift_dataset_syntax()
    monkeypatch.chdir(repo)  # the tools run from the repository root
    theirs = syntax.parse(raw)
    ours = configs.parse_dataset(raw, repo, use_hf=False)
    assert (ours.path or ours.repo_id) == theirs.dataset
    assert list(ours.subsets) == theirs.subsets
    assert ours.sample == theirs.dataset_sample
    assert ours.hub == {True: "huggingface", False: "modelscope", None: "modelscope"}[theirs.use_hf]


def test_swift_ids_tells_preflight_what_is_local_missing_or_on_a_hub(repo):
    cache = repo / "cache"
    (cache / "modelscope" / "models" / "org" / "model___1").mkdir(parents=True)
    (cache / "modelscope" / "models" / "org" / "model___1" / "config.json").write_text("{}")
    (repo / "sft.yaml").write_text("model: org/model.1\ndataset:\n  - data/train.jsonl#5\n  - ./gone.jsonl\n"
                                   "  - hf::org/set:sub\n")
    out = subprocess.run([sys.executable, str(REPO / "scripts/py/swift_ids.py"), "--config", str(repo / "sft.yaml"),
                          "--repo-root", str(repo), "--cache-root", str(cache)],
                         capture_output=True, text=True, check=True).stdout
    assert [line.split("\t") for line in out.splitlines()] == [
        ["model", "hub", "org/model.1", "org/model.1", str(cache / "modelscope/models/org/model___1")],
        ["dataset", "local", str(repo / "data/train.jsonl"), "data/train.jsonl#5", ""],
        ["dataset", "missing", str(repo / "gone.jsonl"), "./gone.jsonl", ""],
        ["dataset", "hub", "org/set", "hf::org/set:sub", ""],
    ]


def test_the_env_files_model_and_dataset_win_over_the_configs(repo):
    entries = configs.config_entries({"model": "a/b", "dataset": ["c/d"], "use_hf": True}, repo,
                                     model="models/base", dataset="data/train.jsonl")
    assert [(e.kind, e.path, e.hub) for e in entries] == [("model", "models/base", "huggingface"),
                                                         ("dataset", "data/train.jsonl", "huggingface")]


def test_the_fingerprint_finds_the_revision_preflight_recorded_for_an_entry_with_a_sample_count(repo):
    import fingerprint as fp
    (repo / "revisions.json").write_text('{"dataset": {"id": "org/name", "hub": "modelscope", "revision": "r1"}}')
    repository = fp.Repo(str(repo), str(repo / "revisions.json"))
    assert repository.dataset("org/name#500") == {"id": "org/name#500", "hub": "modelscope", "revision": "r1"}
    assert repository.dataset("data/train.jsonl#5")["id"] == "data/train.jsonl#5"


# ---------------------------------------------------------------- eval.yaml's rule

def test_a_benchmarks_settings_are_its_section_over_the_defaults_and_its_group_defaults_to_its_name():
    defaults = {"limit": 5, "max_tokens": 64, "answer_mode": "final"}
    settings = eval_suite.benchmark_settings("dialog", {"limit": None, "max_tokens": 32, "source": "heldout"}, defaults)
    assert settings == {"limit": 5, "max_tokens": 32, "answer_mode": "final", "source": "heldout", "group": "dialog"}
    assert eval_suite.benchmark_settings("cmmlu-psych", {"group": "psych"}, {})["group"] == "psych"


def test_the_shell_and_the_report_read_the_same_settings(tmp_path):
    """config.py --eval (what bash's bench_setting reads) and eval_suite.resolve (the report's)."""
    exp = tmp_path / "configs" / "x"
    exp.mkdir(parents=True)
    (tmp_path / "configs" / "benchmarks.yaml").write_text(
        "ceval: {label: C-Eval, dataset: ceval, group: knowledge, section: knowledge, metric: acc, licence: x}\n"
        "dialog: {label: D, dataset: general_qa, group: dialog, section: dialog, metric: rouge, licence: x}\n")
    (exp / "eval.yaml").write_text("benchmarks: [ceval, dialog]\ndefaults: {limit: 4, max_tokens: 16}\n"
                                   "dialog: {max_tokens: 64, limit: null}\n")
    out = subprocess.run([sys.executable, str(REPO / "scripts/py/config.py"), "--eval", str(exp / "eval.yaml")],
                         capture_output=True, text=True, check=True).stdout
    shell = dict(line.split("\t", 1) for line in out.splitlines())
    resolved = eval_suite.resolve(exp / "eval.yaml")
    for bench in ("ceval", "dialog"):
        for key, value in resolved[bench].items():
            assert shell[f"{bench}.{key}"] == str(value), (bench, key)
    assert (shell["ceval.limit"], shell["dialog.limit"], shell["dialog.max_tokens"]) == ("4", "4", "64")
    assert shell["ceval.group"] == "knowledge" and shell["dialog.group"] == "dialog"
