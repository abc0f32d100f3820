"""The identity of a shared evaluation (scripts/py/fingerprint.py shared_identity): the
base model's evaluation of two experiments is one when they ask the same questions of the
same model the same way, whatever they are named and wherever they write; any input that
changes the answers makes it another."""

import contextlib
import io
import json
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts" / "py"))

import fingerprint as fp  # noqa: E402

DEPLOY = "infer_backend: transformers\nmax_new_tokens: 32\nsystem: configs/a/system.txt\n"


@pytest.fixture
def root(tmp_path):
    for exp in ("a", "b"):
        (tmp_path / "configs" / exp).mkdir(parents=True)
        (tmp_path / "output" / exp).mkdir(parents=True)
        (tmp_path / "output" / exp / "val_dataset.jsonl").write_text('{"messages": []}\n')
    # b is a variant of a: its deploy.yaml is generated from a's, with a header comment.
    (tmp_path / "configs" / "a" / "deploy.yaml").write_text(DEPLOY)
    (tmp_path / "configs" / "b" / "deploy.yaml").write_text("# generated from configs/a/deploy.yaml\n" + DEPLOY)
    (tmp_path / "configs" / "a" / "system.txt").write_text("You are a counsellor.\n")
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "config.json").write_text("{}")
    (tmp_path / "env").mkdir()
    (tmp_path / "env" / "requirements-cpu.lock").write_text("torch==2.13.0\n")
    return tmp_path


def spec(root: Path, exp: str, port: int, max_tokens: int = 16, served: str | None = None, deploy_exp: str | None = None,
         heldout: bool = True) -> str:
    """The spec lib/fingerprint.sh writes for the base model's serving and one evaluation of EXP."""
    served = served or f"{exp}-base"
    results, run, cfg = f"{root}/results/{exp}", f"{root}/output/{exp}", f"{root}/configs/{deploy_exp or exp}"
    api = f"http://127.0.0.1:{port}/v1"
    dataset_args = json.dumps({"general_qa": {"local_path": f"{results}/heldout/dialog"}})
    judge = json.dumps({"models": [{"model_id": served, "api_url": api}]})
    lines = [("repo", str(root)), ("location_root", f"RESULTS_ROOT={root}/results"),
             ("location_root", f"OUTPUT_ROOT={root}/output"),
             *[("location_flag", flag) for flag in ("--model", "--served_model_name", "--port", "--api-url", "--work-dir")],
             ("store", f"{root}/results/.store"),
             ("name", f"{cfg}/deploy.yaml\t{{deploy.yaml}}"), ("name", f"{run}\t{{run}}"),
             ("name", f"{results}\t{{results}}"), ("name", f"{served}\t{{served}}"), ("location_value", f"{api}\t{{api}}"),
             ("step", "base-model"), ("model_ref", "model"), ("model_config", f"{cfg}/deploy.yaml"),
             ("step", "serve-base"), ("identity", "shared"), ("arg", "swift"), ("arg", "deploy"), ("arg", f"{cfg}/deploy.yaml"),
             ("arg", "--served_model_name"), ("arg", served), ("arg", "--port"), ("arg", str(port)),
             ("config", f"{cfg}/deploy.yaml"), ("upstream", "base-model"), ("lock", f"{root}/env/requirements-cpu.lock"),
             ("step", "eval-tuned-judge"), ("arg", "evalscope"), ("arg", "--judge"), ("arg", judge.replace("-base", "")),
             ("step", "eval-dialog"), ("identity", "shared"), ("arg", "evalscope"), ("arg", "eval"),
             ("arg", "--model"), ("arg", served), ("arg", "--api-url"), ("arg", api),
             ("arg", "--dataset-args"), ("arg", dataset_args), ("arg", "--judge"), ("arg", judge),
             ("arg", "--generation-config"), ("arg", json.dumps({"max_tokens": max_tokens})),
             ("arg", "--work-dir"), ("arg", f"{results}/{served}/dialog"),
             *([("file", f"{run}/val_dataset.jsonl")] if heldout else []),
             ("upstream", "serve-base"), ("upstream", "base-model"), ("lock", f"{root}/env/requirements-cpu.lock"),
             ("outputs", f"{results}/{served}/dialog"), ("record", f"{results}/{served}/dialog/lab-inputs.json"),
             ("marker", f"{results}/{served}/dialog/lab-eval.json")]
    return "".join(f"{key}\t{value}\n" for key, value in lines)


def digests(text: str) -> dict:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        fp.compute_text(text)
    return {name: digest for name, digest, *_ in (line.split("\t") for line in out.getvalue().splitlines())}


def test_names_ports_and_a_generated_copy_of_the_serving_config_are_no_inputs(root):
    a, b = digests(spec(root, "a", 8001)), digests(spec(root, "b", 9101))
    assert a["serve-base"] == b["serve-base"]
    assert a["eval-dialog"] == b["eval-dialog"]


def test_a_judge_that_is_the_served_model_names_its_address_which_is_no_input(root):
    """The fine-tuned model's judged evaluation (JUDGE_MODEL=served) under another port is the same."""
    assert digests(spec(root, "a", 8001))["eval-tuned-judge"] == digests(spec(root, "a", 9101))["eval-tuned-judge"]


def test_what_changes_the_answers_is_an_input(root):
    a = digests(spec(root, "a", 8001))
    assert digests(spec(root, "b", 8001, max_tokens=32))["eval-dialog"] != a["eval-dialog"]
    # Another held-out split: the held-out rows are others.
    (root / "output" / "b" / "val_dataset.jsonl").write_text('{"messages": [{"role": "user"}]}\n')
    assert digests(spec(root, "b", 8001))["eval-dialog"] != a["eval-dialog"]
    assert digests(spec(root, "b", 8001, heldout=False))["eval-dialog"] != a["eval-dialog"]


def test_another_serving_config_or_model_is_another_evaluation(root):
    a = digests(spec(root, "a", 8001))
    (root / "configs" / "b" / "deploy.yaml").write_text(DEPLOY.replace("32", "64"))
    b = digests(spec(root, "b", 8001))
    assert b["serve-base"] != a["serve-base"] and b["eval-dialog"] != a["eval-dialog"]
    (root / "configs" / "b" / "deploy.yaml").write_text(DEPLOY)
    (root / "model" / "config.json").write_text('{"hidden_size": 64}')
    assert digests(spec(root, "b", 8001))["eval-dialog"] != a["eval-dialog"]


def test_a_path_inside_a_config_stays_as_written(root):
    """A config's settings that name a file keep their path: an experiment's own copy of the
    system prompt is another file, the base's shared one is the same."""
    identity = fp.shared_identity({"configs": {"configs/a/deploy.yaml": {"sha256": "x", "content": {"system": "configs/a/system.txt"}}},
                                   "command": ["configs/a/deploy.yaml"]},
                                  [("configs/a/deploy.yaml", "{deploy.yaml}")])
    assert identity == {"configs": {"{deploy.yaml}": {"content": {"system": "configs/a/system.txt"}}},
                        "command": ["{deploy.yaml}"]}


def test_names_are_replaced_whole_or_as_a_folder_never_inside_another_name():
    names = [("${RESULTS_ROOT}/smoke", "{results}"), ("smoke-base", "{served}")]
    assert fp.unnamed("${RESULTS_ROOT}/smoke/heldout/dialog", names) == "{results}/heldout/dialog"
    assert fp.unnamed("${RESULTS_ROOT}/smoke-r4/heldout/dialog", names) == "${RESULTS_ROOT}/smoke-r4/heldout/dialog"
    assert fp.unnamed("smoke-base-eval", names) == "smoke-base-eval"
    assert fp.unnamed('{"model_id": "smoke-base", "n": 1}', names) == '{"model_id":"{served}","n":1}'


def test_the_store_entry_is_reported_with_its_maker(root):
    text = spec(root, "a", 8001)
    digest = digests(text)["eval-dialog"]
    entry = root / "results" / ".store" / digest
    entry.mkdir(parents=True)
    (entry / "lab-store.json").write_text('{"experiment": "a"}')
    (entry / "lab-inputs.json").write_text(json.dumps({"digest": digest}))
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        fp.compute_text(spec(root, "b", 8001))
    rows = {line.split("\t")[0]: line.split("\t")[2:] for line in out.getvalue().splitlines()}
    assert rows["eval-dialog"] == ["none", "partial", "a"]  # b has no link yet; a's entry is unfinished
    (entry / "lab-eval.json").write_text(json.dumps({"inputs_digest": digest}))
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        fp.compute_text(spec(root, "b", 8001))
    assert out.getvalue().splitlines()[-1].split("\t")[2:] == ["none", "done", "a"]
    assert rows["serve-base"] == ["none", "-", "-"]


def test_swanlab_names_the_evaluation_fingerprint():
    """The experiment that made a shared evaluation logs it once, naming its store entry."""
    import log_eval_swanlab
    config = log_eval_swanlab.run_config([{"benchmark": "ceval", "model": "smoke-base", "inputs_digest": "ab" * 32}])
    assert config["benchmarks"]["ceval"]["fingerprint"] == "ab" * 32
