"""The rendered outputs of make report, make compare, make table and make pilot on fixture runs,
byte for byte against tests/fixtures/golden/. A change of code that is meant to keep the output
(a refactoring) must leave these files as they are; a change of a template or of a fact changes
them on purpose: regenerate them with

    GOLDEN_UPDATE=1 .venv/bin/python -m pytest -q tests/test_golden.py

and read the diff (`git diff tests/fixtures/golden`) before committing it.

What differs from run to run is masked: the time of rendering, the temporary folder, the checkout's path, the
installed package versions and the PNG bytes embedded in the HTML page (matplotlib's)."""

import hashlib
import json
import os
import re
import shutil
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures"
GOLDEN = FIXTURES / "golden"
sys.path.insert(0, str(REPO / "scripts" / "py"))

import compare  # noqa: E402
import lab.report.facts  # noqa: E402
import pilot  # noqa: E402
import report  # noqa: E402
import table  # noqa: E402

VERSIONS = {"python": "3.x", "torch": "t", "transformers": "t", "peft": "p", "ms-swift": "s", "evalscope": "e",
            "swanlab": "w", "lmdeploy": None}


@pytest.fixture(autouse=True)
def fixed_versions(monkeypatch):
    monkeypatch.setattr(lab.report.facts, "package_versions", lambda deploy_venv: dict(VERSIONS))


def masked(text: str, tmp_path: Path, generated_at: str | None) -> str:
    text = text.replace(str(tmp_path), "<tmp>").replace(str(REPO), "<repo>")
    if generated_at:
        text = text.replace(generated_at, "<generated_at>")
    text = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "data:image/png;base64,<png>", text)
    # The lock's digest changes with every package added; the report only quotes it.
    lock = REPO / "env" / "requirements-cpu.lock"
    return text.replace(hashlib.sha256(lock.read_bytes()).hexdigest(), "<lock-sha256>")


def check(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("GOLDEN_UPDATE") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return
    assert path.is_file(), f"no golden file {path}; fix: GOLDEN_UPDATE=1 pytest tests/test_golden.py"
    expected = path.read_text(encoding="utf-8")
    assert text == expected, (f"{name} differs from {path}; fix: if the change is meant, "
                              "GOLDEN_UPDATE=1 pytest tests/test_golden.py and review git diff tests/fixtures/golden")


def generated_at(out: Path, manifest: str) -> str | None:
    path = out / manifest
    return json.loads(path.read_text(encoding="utf-8"))["generated_at"] if path.is_file() else None


def report_argv(tmp_path: Path, run: str, results: Path, steps: Path) -> list[str]:
    return ["--exp", "smoke", "--run-dir", str(FIXTURES / "runs" / run / "smoke"),
            "--export-dir", str(tmp_path / "no-export"), "--results-dir", str(results),
            "--steps", str(steps), "--config", str(REPO / "configs" / "smoke" / "sft.yaml"),
            "--eval-config", str(REPO / "configs" / "smoke" / "eval.yaml"),
            "--lock-file", str(REPO / "env" / "requirements-cpu.lock"),
            "--template", str(REPO / "report" / "template.zh.md"), "--out-dir", str(tmp_path / "out"),
            "--git-commit", "abc123", "--git-dirty", "1", "--cpu-cores", "2", "--profile", "cpu",
            "--gpu-setting", "cpu", "--env-file", "env/smoke.env"]


@pytest.mark.parametrize("case, run, results, steps", [
    ("finished", "ok", FIXTURES / "evalscope" / "smoke", FIXTURES / "state" / "smoke" / "steps.jsonl"),
    ("inprogress", "inprogress", None, None),
])
def test_report(tmp_path, monkeypatch, case, run, results, steps):
    monkeypatch.chdir(REPO)
    argv = report_argv(tmp_path, run, results or tmp_path / "no-results", steps or tmp_path / "no-steps.jsonl")
    assert report.main(argv) == 0
    out = tmp_path / "out"
    when = generated_at(out, "smoke.manifest.json")
    for name in ("smoke.md", "smoke.appendix.md", "smoke.html", "smoke.manifest.json"):
        check(f"report-{case}/{name}", masked((out / name).read_text(encoding="utf-8"), tmp_path, when))
    assert sorted(p.name for p in out.iterdir()) == ["smoke-accuracy.png", "smoke-loss.png", "smoke.appendix.md",
                                                     "smoke.html", "smoke.manifest.json", "smoke.md"]


def comparison_argv(tmp_path: Path, names) -> list[str]:
    compared = FIXTURES / "compare"
    argv = []
    for name in names:
        argv += ["--exp", name, "--run-dir", str(compared / "runs" / name),
                 "--export-dir", str(tmp_path / "no-export" / name),
                 "--results-dir", str(compared / "evals" / name), "--steps", str(tmp_path / "no-steps.jsonl"),
                 "--config", str(tmp_path / "configs" / name / "sft.yaml"),
                 "--eval-config", str(tmp_path / "configs" / name / "eval.yaml"),
                 "--manifest", str(compared / "reports" / f"{name}.manifest.json"),
                 "--report-md", str(compared / "reports" / f"{name}.md")]
    return argv


def configs_with_delta(tmp_path: Path) -> None:
    """The comparison's configs, and delta: gamma's on another base model (a second table group)."""
    configs = tmp_path / "configs"
    shutil.copytree(FIXTURES / "compare" / "configs", configs)
    (configs / "delta").mkdir()
    sft = yaml.safe_load((configs / "gamma" / "sft.yaml").read_text())
    (configs / "delta" / "sft.yaml").write_text(yaml.safe_dump({**sft, "model": "Qwen/Qwen3-30B-A3B-Instruct-2507"}))
    shutil.copy(configs / "gamma" / "eval.yaml", configs / "delta" / "eval.yaml")


def test_compare(tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)
    configs_with_delta(tmp_path)
    out = tmp_path / "out"
    argv = comparison_argv(tmp_path, ("alpha", "beta", "gamma"))
    argv += ["--template", str(REPO / "report" / "compare.zh.md"), "--out-dir", str(out),
             "--git-commit", "2222222now", "--git-dirty", "0", "--env-file", "env/smoke.env"]
    assert compare.main(argv) == 0
    text = (out / "compare-alpha-beta-gamma.md").read_text(encoding="utf-8")
    when = re.search(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", text)
    check("compare/compare-alpha-beta-gamma.md", masked(text, tmp_path, when.group(0) if when else None))


def test_table(tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)
    configs_with_delta(tmp_path)
    out = tmp_path / "out"
    argv = comparison_argv(tmp_path, ("alpha", "beta", "gamma", "delta"))
    assert table.main(argv + ["--out-dir", str(out), "--env-file", "env/smoke.env"]) == 0
    for suffix in ("csv", "tex", "md"):
        name = f"table-alpha-beta-gamma-delta.{suffix}"
        check(f"table/{name}", masked((out / name).read_text(encoding="utf-8"), tmp_path, None))


def test_pilot(tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)
    sys.path.insert(0, str(REPO / "tests"))
    import test_pilot  # the GPU pilot's plan, as tests/test_pilot.py builds it
    (tmp_path / "plan.json").write_text(json.dumps(test_pilot.gpu_plan(), ensure_ascii=False))
    out = tmp_path / "pilot.md"
    assert pilot.main(["--plan", str(tmp_path / "plan.json"), "--template", str(REPO / "report" / "pilot.zh.md"),
                       "--out", str(out)]) == 0
    check("pilot/gpt-oss-20b-sft-v1-pilot.md", masked(out.read_text(encoding="utf-8"), tmp_path, None))
