"""scripts/py/config.py, the one YAML reader of the shell scripts."""
import subprocess
import sys
from pathlib import Path

CONFIG_PY = Path(__file__).resolve().parents[1] / "scripts" / "py" / "config.py"


def read(tmp_path, text):
    path = tmp_path / "c.yaml"
    path.write_text(text, encoding="utf-8")
    return subprocess.run([sys.executable, str(CONFIG_PY), str(path)], capture_output=True, text=True)


def test_keys_sections_lists_and_booleans(tmp_path):
    result = read(tmp_path, "benchmarks: [ceval, cmmlu]\nadd_version: false\nlr: 1.0e-4\n"
                            "ceval:\n  subsets: [a, b]  # two\n  few_shot: 5\ndataset:\n  - x.jsonl\n")
    assert result.returncode == 0
    assert result.stdout.splitlines() == ["benchmarks\tceval\x1fcmmlu", "add_version\tfalse", "lr\t0.0001",
                                          "ceval.subsets\ta\x1fb", "ceval.few_shot\t5", "dataset\tx.jsonl"]


def test_newlines_and_tabs_are_escaped(tmp_path):
    result = read(tmp_path, 'system: "line one\\nline\\ttwo"\n')
    assert result.stdout == "system\tline one\\nline\\ttwo\n"


def test_invalid_yaml_names_file_and_line(tmp_path):
    result = read(tmp_path, "a: 1\nb: [unclosed\nc: 3\n")
    assert result.returncode == 2
    assert "c.yaml:" in result.stderr and "not valid YAML" in result.stderr


def test_not_a_mapping(tmp_path):
    result = read(tmp_path, "- a\n- b\n")
    assert result.returncode == 2
    assert "not a mapping" in result.stderr
