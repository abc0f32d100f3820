"""The evaluation sets' helpers: the held-out rows, the local layouts, the prompt budget,
the keys evalscope gets in-process, the dialog replies the report shows."""

import json
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts" / "py"))

import evalscope_lab  # noqa: E402
import heldout_set  # noqa: E402
import local_set  # noqa: E402
import prompt_budget  # noqa: E402
import runparse as rp  # noqa: E402

VAL = REPO / "tests" / "fixtures" / "heldout" / "val_dataset.jsonl"


def test_heldout_rows_end_at_the_last_user_turn_with_the_lab_reply_as_answer(tmp_path):
    assert heldout_set.main(["--val", str(VAL), "--rows", "2", "--out", str(tmp_path)]) == 0
    rows = [json.loads(line) for line in (tmp_path / "dialog.jsonl").read_text().splitlines()]
    assert len(rows) == 2
    assert [m["role"] for m in rows[0]["messages"]] == ["user", "assistant", "user"]
    assert rows[0]["answer"].startswith("可以试着在睡前")
    prompts = [json.loads(line) for line in (tmp_path / "prompts.txt").read_text().splitlines()]
    assert prompts == [row["messages"] for row in rows]


def test_heldout_rows_need_the_split(tmp_path, capsys):
    assert heldout_set.main(["--val", str(tmp_path / "none.jsonl"), "--rows", "2", "--out", str(tmp_path / "o")]) == 1
    assert "train first" in capsys.readouterr().err


@pytest.mark.parametrize("folder,expected", [
    ("configs/smoke/data/ceval", {"basic_medicine": 8, "education_science": 8, "high_school_biology": 8}),
    ("configs/smoke/data/cmmlu", {"college_education": 8, "high_school_biology": 8, "professional_psychology": 8, "sociology": 8}),
    ("configs/smoke/data/mmlu", {"professional_psychology": 4, "high_school_psychology": 4}),
    ("configs/smoke/data/mmlu_pro", {"psychology": 4}),
    ("configs/judge/crisis", {"crisis": 8}),
    ("configs/smoke/data/gsm8k", {"main": 4}),
    ("configs/smoke/data/safety_bench", {"zh": 6}),
])
def test_local_sets_in_every_layout(folder, expected):
    assert dict(local_set.subjects(REPO / folder)) == expected


@pytest.mark.parametrize("rows, row_group_size, compression", [(0, None, "snappy"), (1, None, "none"),
                                                             (1000, 100, "zstd"), (70001, 10000, "snappy")])
def test_a_parquet_file_s_rows_are_read_from_its_footer_as_pyarrow_reads_them(tmp_path, rows, row_group_size, compression):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    table = pa.table({"id": list(range(rows)), "question": [f"问题{i}" for i in range(rows)],
                      "safe": [i % 2 == 0 for i in range(rows)], "options": [["A", "B"]] * rows})
    path = tmp_path / "test.parquet"
    pq.write_table(table, path, row_group_size=row_group_size, compression=compression)
    assert local_set.parquet_rows(path) == pq.read_metadata(path).num_rows == rows
    shipped = REPO / "configs/smoke/data/safety_bench/data/zh/test.parquet"
    assert local_set.parquet_rows(shipped) == pq.read_metadata(shipped).num_rows
    (tmp_path / "not.parquet").write_bytes(b"PAR1 plain text")
    with pytest.raises(ValueError, match="not a Parquet file"):
        local_set.parquet_rows(tmp_path / "not.parquet")


def test_each_names_a_folder_it_cannot_read_and_still_lists_the_others(tmp_path, capsys):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "test.jsonl").write_text("{not json\n", encoding="utf-8")
    good = REPO / "configs/smoke/data/mmlu_pro"
    assert local_set.main(["--each", str(broken), str(good)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"!\t{broken}\tJSONDecodeError: ")
    assert lines[1:] == [f"{good}\tpsychology\t4"]


def tiny_tokenizer(folder: Path) -> Path:
    """A byte-level tokenizer: the prompt budget counts tokens, any tokenizer will do."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.train_from_iterator(["abc"], trainers.BpeTrainer(vocab_size=300, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer.save(str(folder / "tokenizer.json"))
    return folder


def test_the_prompt_budget_names_both_numbers_when_a_prompt_cannot_fit(tmp_path, capsys):
    tokenizer = tiny_tokenizer(tmp_path / "tok")
    ceval = str(REPO / "configs" / "smoke" / "data" / "ceval")
    assert prompt_budget.main(["--tokenizer", str(tokenizer), "--session-len", "100000", "--set", "ceval", ceval, "5", "16"]) == 0
    prompt = int(capsys.readouterr().out.split("\t")[1])
    assert prompt > prompt_budget.TEMPLATE_TOKENS
    assert prompt_budget.main(["--tokenizer", str(tokenizer), "--session-len", str(prompt + 15), "--set", "ceval", ceval, "5", "16"]) == 1
    err = capsys.readouterr().err
    assert f"about {prompt} tokens" in err and f"{prompt + 16} > the server's session length {prompt + 15}" in err


def test_keys_reach_evalscope_in_process_only():
    judge = json.dumps({"strategy": "llm", "models": [{"model_id": "j", "api_url": "http://127.0.0.1:1/v1"}]})
    argv = evalscope_lab.with_keys(["eval", "--judge", judge], "serve-k", "judge-k")
    assert json.loads(argv[2])["models"][0]["api_key"] == "judge-k" and "serve-k" not in argv
    assert evalscope_lab.with_keys(["perf", "--url", "u"], "serve-k", "")[-2:] == ["--api-key", "serve-k"]
    assert evalscope_lab.with_keys(["eval"], "", "") == ["eval"]


def test_dialog_replies_side_by_side_and_a_skipped_judge(tmp_path):
    reviews = tmp_path / "dialog" / "reviews" / "smoke"
    reviews.mkdir(parents=True)
    (reviews / "general_qa_dialog.jsonl").write_text(json.dumps({
        "index": 3, "target": ["参考"], "messages": [{"role": "user", "content": "你好"},
                                                    {"role": "assistant", "content": "回复"}]}, ensure_ascii=False) + "\n")
    assert rp.read_dialog_replies(tmp_path / "dialog", "smoke") == {3: {"user": "你好", "reference": "参考", "reply": "回复"}}
    skipped = tmp_path / "judge"
    skipped.mkdir()
    (skipped / "lab-eval.json").write_text(json.dumps({"inputs_digest": "d", "score": None, "skipped": "no judge configured"}))
    assert rp.read_eval_result(skipped)["state"] == "skipped"


def test_the_safetybench_sample_parquet_is_its_readable_rows():
    """configs/smoke/data/safety_bench: the parquet EvalScope loads holds exactly zh.jsonl's rows."""
    import pyarrow.parquet as pq
    folder = REPO / "configs/smoke/data/safety_bench"
    readable = [json.loads(line) for line in (folder / "zh.jsonl").read_text(encoding="utf-8").splitlines() if line]
    assert pq.read_table(folder / "data/zh/test.parquet").to_pylist() == readable
    assert sum(row["category"] == "Mental Health" for row in readable) >= 2


def test_the_suite_is_the_one_place_of_each_benchmark():
    """Every shipped eval.yaml picks suite benchmarks and restates none of their identity keys;
    every suite entry states label, group, section, metric and licence."""
    import eval_suite
    suite = eval_suite.load_suite(REPO / "configs/benchmarks.yaml")
    assert {"gsm8k", "safety-zh"} <= set(suite)
    assert eval_suite.check(REPO / "configs/smoke/eval.yaml") == []
    for path in sorted((REPO / "configs").glob("*/eval.yaml")):
        assert eval_suite.check(path) == [], path


def test_an_eval_yaml_section_wins_over_the_suite_and_an_unknown_benchmark_is_named(tmp_path):
    import eval_suite
    (tmp_path / "configs/exp").mkdir(parents=True)
    (tmp_path / "configs/benchmarks.yaml").write_text(
        "a: {label: A, dataset: ceval, group: g, section: general, metric: acc, licence: MIT, few_shot: 5}\n")
    eval_yaml = tmp_path / "configs/exp/eval.yaml"
    eval_yaml.write_text("benchmarks: [a]\na: {few_shot: 0, limit: 3}\n")
    resolved = eval_suite.resolve(eval_yaml)
    assert resolved["a"]["few_shot"] == 0 and resolved["a"]["dataset"] == "ceval" and resolved["a"]["limit"] == 3
    eval_yaml.write_text("benchmarks: [a, b]\n")
    with pytest.raises(eval_suite.SuiteError, match="'b' is not in the suite"):
        eval_suite.resolve(eval_yaml)


def test_cpsyexam_is_fetched_into_general_mcq_layout_from_the_published_answer_split(tmp_path, capsys):
    """scripts/py/fetch_cpsyexam.py on an archive in cpsyexam.zip's layout (questions written here):
    one <task>_val.jsonl per task of the type, multiple answers as a list; a split without
    answers is refused."""
    import zipfile
    import fetch_cpsyexam

    def question(answer):
        return {"question": "示例问题", "options": {"A": "一", "B": "二", "C": "三", "D": "四"}, "answer": answer}
    archive = tmp_path / "cpsyexam.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("cpsyexam/dev/CA-心理咨询-单项选择题.json", json.dumps([question("B"), question("D")], ensure_ascii=False))
        z.writestr("cpsyexam/dev/CA-心理咨询-多项选择题.json", json.dumps([question("CA")], ensure_ascii=False))
        z.writestr("cpsyexam/test/CA-心理咨询-单项选择题.json", json.dumps([question("")], ensure_ascii=False))
    out = tmp_path / "multi"
    assert fetch_cpsyexam.main(["--type", "multi", "--out", str(out), "--archive", str(archive)]) == 0
    rows = [json.loads(line) for line in (out / "CA-心理咨询_val.jsonl").read_text(encoding="utf-8").splitlines()]
    assert rows == [{"id": 0, "question": "示例问题", "A": "一", "B": "二", "C": "三", "D": "四", "answer": ["A", "C"]}]
    assert dict(local_set.subjects(out)) == {"CA-心理咨询": 1}
    assert json.loads((out / "SOURCE.json").read_text())["split"] == "validation"
    single = tmp_path / "single"
    assert fetch_cpsyexam.main(["--type", "single", "--out", str(single), "--archive", str(archive)]) == 0
    assert [json.loads(line)["answer"] for line in (single / "CA-心理咨询_val.jsonl").read_text().splitlines()] == ["B", "D"]
    assert fetch_cpsyexam.main(["--type", "single", "--out", str(tmp_path / "t"), "--archive", str(archive),
                                "--split", "test"]) == 1
    assert "has no answer" in capsys.readouterr().err
