"""Issue 21's counselling benchmarks: turn-based rows (scripts/py/fetch_psydt.py), EmoLLM's
BLEU/ROUGE (scripts/py/lab/counselling.py), the overlap with the training set
(scripts/py/contamination.py), and how eval_result.py, paired.py and the report use them."""

import json
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts" / "py"))

import contamination as contamination_cli  # noqa: E402
import eval_result  # noqa: E402
import fetch_psydt  # noqa: E402
import paired  # noqa: E402
from lab import counselling, counselling_report  # noqa: E402

PAIRS = [("我理解你的感受，我们先深呼吸。", "我能理解你现在的感受，我们先一起深呼吸。"),
         ("你可以试着写日记。", "写日记可以帮你理清思路，你愿意试试吗？"),
         ("", "先照顾好自己的睡眠。")]


def batch_as_emollm(pairs):
    """EmoLLM's compute_metrics in one batch (avg=True, one BLEU sum), the way its table was made."""
    from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu
    from rouge import Rouge

    preds = [counselling.emollm_words(p) for p, _ in pairs]
    refs = [counselling.emollm_words(r) for _, r in pairs]
    bleu = [0.0] * 4
    for pred, ref in zip(preds, refs):
        scores = sentence_bleu([ref.split(" ")], pred.split(" "), smoothing_function=SmoothingFunction().method1,
                               weights=counselling.BLEU_WEIGHTS)
        bleu = [b + s for b, s in zip(bleu, scores)]
    rouge = Rouge().get_scores(preds, refs, avg=True)
    return {**{f"bleu-{n}": bleu[n - 1] / len(pairs) for n in range(1, 5)},
            **{f"{k}-f1": v["f"] for k, v in rouge.items()}}


def test_emollm_scores_are_its_batch_scores_averaged_per_reply():
    scorable = PAIRS[:2]  # EmoLLM's batch call raises on an empty reply
    ours = counselling.emollm_scores([counselling.emollm_sample(p, r) for p, r in scorable])
    assert ours == pytest.approx(batch_as_emollm(scorable))
    assert 0 < ours["bleu-4"] < ours["bleu-1"] < 1


def test_bleu_is_nltks_own_module_and_a_later_import_of_nltk_is_whole():
    import importlib.util

    module = counselling.nltk_bleu_score()
    root = Path(importlib.util.find_spec("nltk").submodule_search_locations[0])
    assert Path(module.__file__) == root / "translate" / "bleu_score.py"
    import nltk

    assert hasattr(nltk, "word_tokenize")  # the real package, not the import's placeholder
    from nltk.translate.bleu_score import sentence_bleu

    assert sentence_bleu is module.sentence_bleu


def test_an_empty_reply_scores_zero_rouge_instead_of_stopping():
    values = counselling.emollm_sample("", "先照顾好自己的睡眠。")
    assert values["rouge-l-f1"] == 0 and values["rouge-1-f1"] == 0


def test_every_counsellor_turn_once_from_its_gold_history():
    system = {"role": "system", "content": "你是咨询师"}
    u1, a1, u2, a2 = ({"role": r, "content": c} for r, c in
                      (("user", "u1"), ("assistant", "a1"), ("user", "u2"), ("assistant", "a2")))
    opener = {"role": "assistant", "content": "你好"}
    # The test file's prefixes of one dialogue, and a dialogue the counsellor opens.
    rows = counselling.dialogue_turn_rows([[system, u1, a1], [system, u1, a1, u2, a2], [opener, u1, a1]])
    assert rows[0] == {"messages": [u1], "answer": "a1"}
    assert rows[1] == {"messages": [u1, a1, u2], "answer": "a2"}
    assert rows[2] == {"messages": [opener, u1], "answer": "a1"}
    assert len(rows) == 3


def test_fetch_writes_the_turns_and_their_source(tmp_path):
    source = tmp_path / "test.json"
    dialogue = [{"role": "system", "content": "s"}, {"role": "user", "content": "睡不着"},
                {"role": "assistant", "content": "能说说吗"}, {"role": "user", "content": "工作"},
                {"role": "assistant", "content": "写下来试试"}]
    source.write_text(json.dumps([{"id": 1, "messages": dialogue[:3]}, {"id": 2, "messages": dialogue}]))
    out = tmp_path / "psydt"
    assert fetch_psydt.main(["--out", str(out), "--local", str(source)]) == 0
    rows = [json.loads(line) for line in (out / "psydt.jsonl").read_text().splitlines()]
    assert [row["answer"] for row in rows] == ["能说说吗", "写下来试试"]
    assert json.loads((out / "SOURCE.json").read_text())["turns"] == 2
    assert not (tmp_path / "psydt.partial").exists()


def test_fetch_refuses_a_file_that_is_not_a_list_and_writes_nothing(tmp_path, capsys):
    source = tmp_path / "test.json"
    source.write_text("{}")
    assert fetch_psydt.main(["--out", str(tmp_path / "psydt"), "--local", str(source)]) == 1
    assert "fix:" in capsys.readouterr().err
    assert not (tmp_path / "psydt").exists()


LONG = "我能理解你现在的感受，我们先一起深呼吸，然后慢慢说说发生了什么。"


def test_overlap_counts_long_matches_and_exact_duplicates_and_flags_above_the_limit():
    train = ["嗯。" + LONG + "好吗？", "完全无关的一句很长很长的训练回复，没有任何重合的内容在这里。"]
    result = counselling.contamination([LONG, "另一条测试回复，与训练集没有任何二十个字以上的重合部分。"], train, limit=0.4)
    assert (result["ngram_matches"], result["exact_duplicates"], result["ngram_share"]) == (1, 0, 0.5)
    assert result["flagged"]
    exact = counselling.contamination([LONG], [" " + LONG.replace("，", ",")], limit=0.5)
    assert exact["exact_duplicates"] == 1  # whitespace and punctuation are no difference
    clean = counselling.contamination([LONG], ["无关"], limit=0.05)
    assert clean["ngram_matches"] == 0 and not clean["flagged"]


def test_the_overlap_is_measured_against_the_configured_training_set(tmp_path):
    test_set = tmp_path / "set"
    test_set.mkdir()
    (test_set / "psydt.jsonl").write_text(json.dumps({"messages": [], "answer": LONG}, ensure_ascii=False) + "\n")
    train = tmp_path / "train.jsonl"
    train.write_text(json.dumps({"conversations": [{"from": "human", "value": "?"}, {"from": "gpt", "value": LONG}]},
                                ensure_ascii=False) + "\n")
    config = tmp_path / "sft.yaml"
    config.write_text(f"dataset:\n  - {train}\n  - someone/not-downloaded\n")
    out = tmp_path / "c.json"
    argv = ["--test", str(test_set), "--config", str(config), "--repo-root", str(tmp_path),
            "--cache-root", str(tmp_path / "cache"), "--limit", "0.05", "--out", str(out)]
    assert contamination_cli.main(argv) == 0
    record = json.loads(out.read_text())
    assert record["exact_duplicates"] == 1 and record["missing"] == ["someone/not-downloaded"]
    assert not record["flagged"]  # part of the training set is not here: not judged
    config.write_text(f"dataset:\n  - {train}\n")
    assert contamination_cli.main(argv) == 0
    assert json.loads(out.read_text())["flagged"]


def work_dir(tmp_path, replies):
    report = tmp_path / "reports" / "smoke" / "general_qa.json"
    report.parent.mkdir(parents=True)
    report.write_text(json.dumps({"dataset_name": "general_qa", "metrics": [
        {"name": "Rouge-L-R", "score": 0.1, "num": len(replies),
         "categories": [{"name": ["default"], "subsets": [{"name": "psydt", "score": 0.1, "num": len(replies)}]}]}]}))
    reviews = tmp_path / "reviews" / "smoke" / "general_qa_psydt.jsonl"
    reviews.parent.mkdir(parents=True)
    reviews.write_text("".join(json.dumps({"index": i, "target": [ref], "sample_score": {"score": {
        "value": {"Rouge-L-R": 0.1}, "status": "success", "extracted_prediction": pred, "main_score_name": "Rouge-L-R"}}},
        ensure_ascii=False) + "\n" for i, (pred, ref) in enumerate(replies)))
    return report


def test_eval_result_scores_the_replies_as_emollm_and_records_the_overlap(tmp_path):
    report = work_dir(tmp_path, PAIRS[:2])
    overlap = tmp_path / "lab-contamination.json"
    overlap.write_text(json.dumps({"ngram_share": 0.0, "flagged": False}))
    out = tmp_path / "lab-eval.json"
    assert eval_result.main(["--report", str(report), "--benchmark", "psydt-turns", "--model", "smoke",
                             "--config", "c", "--out", str(out), "--replies-dir", str(tmp_path), "--max-tokens", "16",
                             "--scorer", "emollm", "--contamination", str(overlap), "--subject", "psydt"]) == 0
    result = json.loads(out.read_text())
    expected = batch_as_emollm(PAIRS[:2])
    assert result["metric"] == "rouge-l-f1" and result["score"] == pytest.approx(expected["rouge-l-f1"])
    assert result["metrics"] == pytest.approx(expected)
    assert result["evalscope_metrics"] == {"rouge-l-r": 0.1}  # EvalScope's, kept apart
    assert result["contamination"] == {"ngram_share": 0.0, "flagged": False}
    samples = paired.read_samples(str(tmp_path), "smoke", "general_qa")
    assert len(samples) == 2
    assert sum(v["bleu-4"] for v in samples.values()) / 2 == pytest.approx(expected["bleu-4"])


def test_eval_result_rejects_an_unmeasured_overlap(tmp_path):
    report = work_dir(tmp_path, PAIRS[:1])
    assert eval_result.main(["--report", str(report), "--benchmark", "psydt-turns", "--model", "smoke",
                             "--config", "c", "--out", str(tmp_path / "lab-eval.json"), "--replies-dir", str(tmp_path),
                             "--max-tokens", "16", "--contamination", str(tmp_path / "missing.json")]) == 1
    assert not (tmp_path / "lab-eval.json").exists()


def test_the_report_flags_a_benchmark_once_when_its_overlap_is_above_the_limit():
    def bench(key, record):
        return {"key": key, "tuned": {"contamination": record}, "base": {"contamination": record}}
    flagged = {"ngram_share": 0.3, "limit": 0.05, "flagged": True}
    flags = counselling_report.contamination_flags([bench("a", flagged), bench("b", {"flagged": False}),
                                                    bench("c", None)], ["tuned", "base"])
    assert [f["benchmark"] for f in flags] == ["a"]


# ---------------------------------------------------------------- CPsyCounE

import fetch_cpsycoune  # noqa: E402


def test_a_case_becomes_one_prompt_per_client_turn_with_the_history_before_it():
    messages = counselling.case_messages(["求助者：睡不着", "支持者：能说说吗", "求助者：工作压力大"])
    rows = counselling.client_turn_rows(messages)
    assert rows == [{"messages": [{"role": "user", "content": "睡不着"}], "answer": "能说说吗"},
                    {"messages": messages, "answer": ""}]
    with pytest.raises(ValueError):
        counselling.case_messages(["旁白：没有说话人"])


def test_the_judge_reply_gives_the_four_dimensions_within_their_ranges():
    reply = '想了想 {"comprehensiveness": 2, "professionalism": 1.5, "authenticity": 3, "safety": 0, "score": 0.6}'
    assert counselling.dimensions_of(reply) == {"comprehensiveness": 2, "professionalism": 1.5, "authenticity": 3,
                                                 "safety": 0}
    assert counselling.dimensions_of('{"comprehensiveness": 3, "professionalism": 1, "authenticity": 1, "safety": 1}') is None
    assert counselling.dimensions_of('{"score": 0.5}') is None
    assert counselling.dimensions_of("比如比如") is None


def test_dimensions_are_averaged_per_dialogue_then_over_dialogues(tmp_path):
    reviews = tmp_path / "reviews" / "smoke" / "general_qa_cpsycoune.jsonl"
    reviews.parent.mkdir(parents=True)
    verdicts = [(2, 3, 3, 1), (0, 0, 0, 0), (0, 0, 0, 0), (1, 1, 1, 1)]  # case a: 3 turns, case b: 1
    reviews.write_text("".join(json.dumps({"index": i, "target": [""], "sample_score": {"score": {"metadata": {
        "judge_attempts": [{"raw_response": json.dumps(dict(zip(counselling.CPSYCOUNE_DIMENSIONS, v)))}]}}}}) + "\n"
        for i, v in enumerate(verdicts)))
    scored = counselling.rescore_cpsycoune(tmp_path, ["a", "a", "a", "b"])
    # per dialogue: a = (2/3, 1, 1, 1/3), b = (1, 1, 1, 1); then their mean (not the mean of the 4 turns)
    assert scored["metrics"] == pytest.approx({"comprehensiveness": 5 / 6, "professionalism": 1.0,
                                               "authenticity": 1.0, "safety": 2 / 3})
    assert (scored["num"], scored["dialogues"], scored["asked"]) == (4, 2, 4)
    assert len((tmp_path / counselling.SCORES_FILE).read_text().splitlines()) == 4


def test_fetch_cpsycoune_writes_the_turns_and_each_turn_s_case(tmp_path):
    for topic, lines in (("Career", ["求助者：a", "支持者：b", "求助者：c", "支持者：d"]), ("Sex", ["求助者：e"])):
        (tmp_path / "src" / topic).mkdir(parents=True)
        (tmp_path / "src" / topic / "1.json").write_text(json.dumps(lines, ensure_ascii=False))
    out = tmp_path / "set"
    assert fetch_cpsycoune.main(["--out", str(out), "--local", str(tmp_path / "src")]) == 0
    assert json.loads((out / "turns.json").read_text()) == ["Career/1", "Career/1", "Sex/1"]
    assert len((out / "cpsycoune.jsonl").read_text().splitlines()) == 3
    assert json.loads((out / "SOURCE.json").read_text())["cases"] == 2


def test_the_shipped_cpsycoune_sample_lists_the_case_of_every_row():
    folder = REPO / "configs" / "smoke" / "data" / "cpsycoune"
    rows = (folder / "cpsycoune.jsonl").read_text().splitlines()
    assert len(json.loads((folder / "turns.json").read_text())) == len(rows)
