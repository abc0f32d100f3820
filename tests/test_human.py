"""The blind human evaluation's logic (scripts/py/lab/human*.py, human_eval.py, human_server.py):
the packet drawn from EvalScope reviews written here (two models, two sources), the checks an
imported form passes, Krippendorff's alpha against a computation by hand, the statistics, and the
rating page's refusals through FastAPI's test client. The real page in Chromium: tests/smoke/human.bats."""

import json
import sqlite3
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts" / "py"))

import human_eval  # noqa: E402
from lab import human, human_facts, human_stats, human_store as store  # noqa: E402

MODELS = ("exp1", "exp1-base")
SECRET = "model-key-7f3a"  # in the key only: the page must never see it


def review(index, turns, reply_message, judge=None):
    messages = [{"role": "system", "content": "系统提示"}] + turns + [reply_message]
    score = {"status": "success", "value": {"score": judge}, "main_score_name": "score"} if judge is not None \
        else {"status": "excluded", "value": {}}
    return {"index": index, "messages": messages, "target": ["参考"], "sample_score": {"score": score}}


def harmony_reply(final, raw=None):
    return {"role": "assistant", "content": [{"type": "reasoning", "reasoning": "想一想"}, {"type": "text", "text": final or ""}],
            "metadata": {"harmony": {"form": "raw", "final": final, "analysis": "想一想", "raw": raw or final}}}


def write_eval(results, served, bench, rows, judged=False):
    work = results / served / bench
    (work / "reviews" / served).mkdir(parents=True)
    (work / "reviews" / served / "general_qa_dialog.jsonl").write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    done = {"score": 0.5, "num": len(rows), "metric": "score"}
    if judged:
        done["judge"] = {"model": "judge-model", "placeholder": False}
    (work / "lab-eval.json").write_text(json.dumps(done), encoding="utf-8")


@pytest.fixture
def experiment(tmp_path):
    """configs/exp1/eval.yaml (dialog-judge on held-out rows, crisis-judge on crisis messages) and
    both models' reviews: 10 held-out conversations, 5 crisis messages, each model's reply the final
    channel of a harmony reply (its analysis says the model's name: never to be shown)."""
    configs = tmp_path / "configs"
    (configs / "exp1").mkdir(parents=True)
    (configs / "benchmarks.yaml").write_text((REPO / "configs" / "benchmarks.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    (configs / "exp1" / "eval.yaml").write_text(
        "benchmarks: [dialog-judge, crisis-judge]\ncrisis-judge:\n  local_path: configs/judge/crisis\n", encoding="utf-8")
    results = tmp_path / "results" / "exp1"
    for model in MODELS:
        held = [review(i, [{"role": "user", "content": f"对话{i}"}, {"role": "assistant", "content": "嗯"},
                           {"role": "user", "content": f"问题{i}"}],
                       harmony_reply(f"{model}的回复{i}".replace(model, "模型"),
                                     f"<|channel|>analysis<|message|>I am {SECRET}<|end|>"), judge=i / 10)
                for i in range(10)]
        held.append(review(10, [{"role": "user", "content": "截断"}], harmony_reply(None)))  # no final channel
        write_eval(results, model, "dialog-judge", held, judged=True)
        crisis = [review(i, [{"role": "user", "content": f"危机{i}"}], harmony_reply(f"危机回复{i}-{MODELS.index(model)}"))
                  for i in range(5)]
        write_eval(results, model, "crisis-judge", crisis)
    return {"results": results, "eval_yaml": configs / "exp1" / "eval.yaml", "root": tmp_path}


def systems(experiment):
    return human_eval.systems_of("exp1", experiment["results"], experiment["eval_yaml"])


def packed(experiment, n=6, seed=7, raters=("ann", "bob", "cy")):
    out = experiment["root"] / "packet"
    packet, key = human.build(systems(experiment), n, seed, list(raters))
    human.write_packet(out, packet, key, "http://127.0.0.1:8311")
    return out, packet, key


# ---------------------------------------------------------------- the packet

def test_pack_draws_stratified_seeded_anonymised(experiment):
    out, packet, key = packed(experiment, n=6)
    # 11 held-out and 5 crisis scenarios: 6 * 11/16 = 4.1 and 6 * 5/16 = 1.9 -> 4 and 2.
    assert key["sources"] == {"crisis": 2, "heldout": 4}
    assert [i["id"] for i in packet["items"]] == [f"s{n:03d}" for n in range(1, 7)]
    # Seeded: the same inputs and seed give the same packet; another seed another draw.
    again, _ = human.build(systems(experiment), 6, 7, ["ann", "bob", "cy"])
    other, _ = human.build(systems(experiment), 6, 8, ["ann", "bob", "cy"])
    assert again == packet and other["digest"] != packet["digest"]
    # Random order: not the sources one after the other.
    assert [i["source"] for i in packet["items"]] != sorted(i["source"] for i in packet["items"])
    text = (out / human.PACKET).read_text(encoding="utf-8")
    for word in MODELS + (SECRET, "dialog-judge", "crisis-judge", "想一想", "系统提示"):
        assert word not in text
    assert (out / human.KEY).stat().st_mode & 0o777 == 0o600
    assert (out / human.RATERS).stat().st_mode & 0o777 == 0o600
    # The key names each reply's model, and the scenario shown is the conversation before the reply.
    for item in packet["items"]:
        models = {key["replies"][r["id"]]["model"] for r in item["replies"]}
        assert models == set(MODELS)
        assert item["turns"][-1]["role"] == "user" and all(t["role"] != "system" for t in item["turns"])


def test_reply_is_the_final_channel_and_none_is_empty():
    assert human.final_text(harmony_reply("答案", "<|channel|>analysis<|message|>x<|end|>")) == "答案"
    assert human.final_text(harmony_reply(None)) == ""
    raw = {"role": "assistant", "content": "<|channel|>analysis<|message|>想<|end|><|start|>assistant<|channel|>final<|message|>好的<|return|>"}
    assert human.final_text(raw) == "好的"
    assert human.final_text({"role": "assistant", "content": "没有通道"}) == "没有通道"


def test_sides_are_balanced_per_rater_and_differ_between_raters(experiment):
    _, packet, _ = packed(experiment, n=8)
    flips = {r: human.sides(packet, r) for r in packet["raters"]}
    for rater, sides in flips.items():
        assert sum(sides.values()) == 4, rater
    assert len({tuple(s.values()) for s in flips.values()}) > 1


def test_pack_refuses_more_scenarios_than_answered_and_bad_raters(experiment):
    with pytest.raises(human.HumanError, match="N=17 but only 16 scenarios"):
        human.build(systems(experiment), 17, 1, ["ann"])
    with pytest.raises(human.HumanError, match="not valid"):
        human.build(systems(experiment), 2, 1, ["Ann Smith"])


def test_repack_keeps_tokens_and_refuses_other_items_once_rated(experiment):
    out, packet, key = packed(experiment)
    tokens = json.loads((out / human.RATERS).read_text())
    human.write_packet(out, packet, key, "http://x")
    assert json.loads((out / human.RATERS).read_text()) == tokens
    store.give(store.connect(out / human.RATINGS), packet, "ann", "s001", "comment", "", "好")
    other, other_key = human.build(systems(experiment), 6, 99, ["ann", "bob", "cy"])
    with pytest.raises(human.HumanError, match="ratings have begun"):
        human.write_packet(out, other, other_key, "http://x")


# ---------------------------------------------------------------- forms: export and import

def filled_form(packet, rater):
    rows = store.export_rows(packet, rater)
    for row in rows:
        for side in "AB":
            row.update({f"relevance_{side}": "4", f"professionalism_{side}": "3", f"empathy_{side}": "5",
                        f"safety_{side}": "pass"})
        row["preference"] = "A"
    return rows


def answer_count(out):
    return sqlite3.connect(out / human.RATINGS).execute("SELECT count(*) FROM answers").fetchone()[0]


def test_export_import_round_trip(experiment, tmp_path):
    out, packet, key = packed(experiment)
    assert human_eval.main(["export", "--packet", str(out), "--out", str(tmp_path / "forms")]) == 0
    exported = (tmp_path / "forms" / "ann.csv").read_text(encoding="utf-8")
    for word in MODELS + (SECRET,):
        assert word not in exported
    form = tmp_path / "ann-filled.csv"
    form.write_text(store.to_csv(filled_form(packet, "ann")), encoding="utf-8")
    assert human_eval.main(["import", "--packet", str(out), str(form)]) == 0
    assert answer_count(out) == 6 * 9
    # "A" is the reply ann saw on the left: the stored preference is that reply's id.
    db = store.connect(out / human.RATINGS)
    shown = store.as_sides(packet, "ann", store.answers(db, "ann"))
    assert all(entry["preference"] == "A" and entry["A"]["relevance"] == "4" for entry in shown.values())


@pytest.mark.parametrize("change,message", [
    ({"item": "s999"}, "unknown item 's999'"),
    ({"rater": "zed"}, "unknown rater 'zed'"),
    ({"empathy_B": "6"}, "empathy '6' is not on the scale 1-5"),
    ({"safety_A": "maybe"}, "safety 'maybe' is not pass or fail"),
    ({"preference": "C"}, "'C' is not A, B or tie"),
])
def test_import_refuses_a_bad_cell_and_imports_nothing(experiment, tmp_path, capsys, change, message):
    out, packet, _ = packed(experiment)
    good = tmp_path / "good.json"
    good.write_text(json.dumps(filled_form(packet, "bob"), ensure_ascii=False), encoding="utf-8")
    rows = filled_form(packet, "ann")
    rows[-1].update(change)  # the last row of the second file: everything before it is fine
    bad = tmp_path / "bad.csv"
    bad.write_text(store.to_csv(rows), encoding="utf-8")
    assert human_eval.main(["import", "--packet", str(out), str(good), str(bad)]) == 1
    err = capsys.readouterr().err
    assert message in err and "bad.csv row 7" in err and "fix: " in err
    assert not (out / human.RATINGS).exists() or answer_count(out) == 0


# ---------------------------------------------------------------- Krippendorff's alpha by hand

def test_alpha_ordinal_equals_the_hand_computation():
    """Three raters, four replies (one rater missing on the fourth), ordinal, domain 1-5:
         reply1: 1 1 2   reply2: 3 3 3   reply3: 4 5 5   reply4: 2 1 -
    Coincidences (each ordered pair of values within a unit, weight 1/(m_u - 1)):
      o11 = 1, o12 = o21 = 1 + 1 = 2, o33 = 3, o45 = o54 = 1, o55 = 1;  n_c = 3 2 3 1 2, n = 11.
    Ordinal distance: d(c,k) = (n_c + ... + n_k - (n_c + n_k) / 2)^2:
      d12 = 2.5^2 = 6.25, d45 = 1.5^2 = 2.25, and d13 25, d14 49, d15 72.25, d23 6.25, d24 20.25,
      d25 36, d34 4, d35 12.25.
    D_o = (2*2*6.25 + 2*1*2.25) / 11 = 29.5 / 11
    D_e = 2 * sum_{c<k} n_c n_k d(c,k) / (n (n-1)) = 2 * 1155 / 110 = 21
    alpha = 1 - D_o / D_e = 1 - 29.5 / 231 = 201.5 / 231 = 0.872294..."""
    table = {"r1": (1, 1, 2), "r2": (3, 3, 3), "r3": (4, 5, 5), "r4": (2, 1, None)}
    rows = [{"rater": rater, "item": reply, "reply": reply, "field": "empathy", "value": str(v)}
            for reply, values in table.items() for rater, v in zip(("ann", "bob", "cy"), values) if v is not None]
    result = human_stats.agreement(rows, ["ann", "bob", "cy"])["empathy"]
    assert result["alpha"] == pytest.approx(201.5 / 231, abs=1e-12)
    assert (result["units"], result["pairable"], result["level"]) == (4, 4, "ordinal")


def test_alpha_nominal_perfect_and_undefined():
    rows = [{"rater": r, "item": f"s{i}", "reply": f"x{i}", "field": "safety", "value": v}
            for i, v in enumerate(("pass", "fail", "pass")) for r in ("ann", "bob")]
    assert human_stats.agreement(rows, ["ann", "bob"])["safety"]["alpha"] == pytest.approx(1.0)
    one_rater = [r for r in rows if r["rater"] == "ann"]
    assert human_stats.agreement(one_rater, ["ann", "bob"])["safety"]["alpha"] is None


# ---------------------------------------------------------------- the statistics

def rated(experiment, prefer_tuned=True):
    out, packet, key = packed(experiment, n=6)
    db = store.connect(out / human.RATINGS)
    for rater in packet["raters"]:
        for item in packet["items"]:
            for reply in item["replies"]:
                tuned = key["replies"][reply["id"]]["model"] == "exp1"
                for field in human.DIMENSIONS:
                    store.give(db, packet, rater, item["id"], field, reply["id"], 5 if tuned else 2)
                store.give(db, packet, rater, item["id"], "safety", reply["id"], "pass" if tuned else "fail")
            winner = next(r["id"] for r in item["replies"] if (key["replies"][r["id"]]["model"] == "exp1") == prefer_tuned)
            store.give(db, packet, rater, item["id"], "preference", "", winner)
    return out, packet, key


def test_report_unblinds_means_safety_and_win_rate(experiment, tmp_path):
    out, packet, key = rated(experiment)
    assert human_eval.main(["report", "--packet", str(out), "--exp", "exp1", str(tmp_path / "r")]) == 0
    facts = json.loads((tmp_path / "r" / human.EXPERIMENT_RESULTS).read_text(encoding="utf-8"))
    means = {m["model"]: m for m in facts["means"]}
    assert means["exp1"]["empathy"]["mean"] == 5 and means["exp1"]["empathy"]["ci"] == [5, 5]
    assert means["exp1-base"]["relevance"]["mean"] == 2 and means["exp1-base"]["safety"]["mean"] == 0
    assert means["exp1"]["safety"]["n"] == 18 and means["exp1"]["safety"]["n_items"] == 6
    (pair,) = facts["preferences"]
    assert (pair["first"], pair["second"], pair["wins"], pair["losses"]) == ("exp1", "exp1-base", 18, 0)
    assert pair["win_rate"]["mean"] == 1.0
    assert facts["agreement"]["relevance"]["alpha"] == pytest.approx(1.0)
    assert facts["inputs_digest"]
    # The report's and the table's view of it.
    report = human_facts.report_facts(tmp_path / "r", "exp1")
    assert report["roles"] == {"exp1": "tuned", "exp1-base": "base"}
    assert human_facts.win_rate(facts, "exp1-base", "exp1")["mean"] == 0.0


def test_judge_agreement_on_the_replies_it_scored():
    key = {"models": ["m", "b"], "replies": {
        "a1": {"item": "s1", "model": "m", "judge": 0.9}, "b1": {"item": "s1", "model": "b", "judge": 0.1},
        "a2": {"item": "s2", "model": "m", "judge": 0.2}, "b2": {"item": "s2", "model": "b", "judge": 0.8},
        "a3": {"item": "s3", "model": "m", "judge": 0.6}, "b3": {"item": "s3", "model": "b", "judge": None}}}
    rows = [{"rater": "r", "item": k["item"], "reply": rid, "field": "empathy", "value": v, "model": k["model"]}
            for (rid, k), v in zip(key["replies"].items(), ("5", "1", "3", "2", "4", "3"))]
    rows += [{"rater": "r", "item": "s1", "reply": "", "field": "preference", "value": "m", "model": None},
             {"rater": "r", "item": "s2", "reply": "", "field": "preference", "value": "m", "model": None}]
    result = human_stats.judge_agreement(rows, key)
    # Judge 0.9 0.1 0.2 0.8 0.6 -> ranks 5 1 2 4 3; humans 5 1 3 2 4 -> ranks 5 1 3 2 4:
    # d = 0 0 -1 2 -1, sum d^2 = 6, rho = 1 - 6*6 / (5*24) = 0.7
    assert result["dimensions"]["empathy"]["rho"] == pytest.approx(0.7)
    assert result["preference"] == {"n": 2, "agreement": 0.5}


# ---------------------------------------------------------------- the page's refusals

@pytest.fixture
def client(experiment):
    from fastapi.testclient import TestClient
    import human_server

    out, packet, key = packed(experiment)
    tokens = json.loads((out / human.RATERS).read_text())
    return TestClient(human_server.create_app(out)), out, packet, key, tokens


def test_page_refuses_others_and_strangers(client):
    app, out, packet, key, tokens = client
    assert app.get("/rate/1").status_code == 401
    assert app.get("/r/not-a-token").status_code == 403
    assert app.post("/api/answer", json={}).status_code == 401
    assert app.get(f"/r/{tokens['ann']}").status_code == 200  # followed to /rate/1
    assert app.get("/api/raters/bob/answers").status_code == 403
    assert app.get("/api/raters/ann/answers").status_code == 200
    answer = {"item": "s001", "field": "empathy", "side": "A", "value": "4"}
    assert app.post("/api/answer", json=answer).status_code == 403  # not from the page
    headers = {"X-Requested-With": "rating-page"}
    assert app.post("/api/answer", json=answer, headers=headers).json()["ok"]
    assert app.post("/api/answer", json={**answer, "value": "9"}, headers=headers).status_code == 400
    bodies = [app.get(f"/rate/{n}").text for n in range(1, 7)] + [app.get("/api/raters/ann/answers").text]
    for body in bodies:
        for word in MODELS + (SECRET,) + tuple(key["replies"]) + (tokens["bob"], tokens["cy"]):
            assert word not in body
    # Committed when given: a new app on the same folder (a restarted server) has it.
    import human_server
    from fastapi.testclient import TestClient
    again = TestClient(human_server.create_app(out))
    again.get(f"/r/{tokens['ann']}")
    assert again.get("/api/raters/ann/answers").json()["answers"]["s001"]["A"] == {"empathy": "4"}


# ---------------------------------------------------------------- make's layer: scripts/human-eval.sh

@pytest.mark.parametrize("command,settings,message", [
    ("pack", {"N": "many"}, "N='many' is not a number of scenarios"),
    ("pack", {"RATERS": "Ann"}, "rater id 'Ann' is not valid"),
    ("pack", {}, "no finished counselling-reply evaluation of smoke, smoke-base"),
    ("serve", {}, "no packet in"),
    ("serve", {"HUMAN_EVAL_PORT": "99999"}, "HUMAN_EVAL_PORT='99999' is not a port number"),
    ("import", {}, "make human-import needs the filled forms"),
    ("report", {}, "no packet in"),
])
def test_script_stops_with_error_and_fix(tmp_path, command, settings, message):
    import os
    import subprocess

    env = {k: v for k, v in os.environ.items() if k not in ("EXP", "EXPS", "N", "RATERS", "FILES", "MAKEFLAGS")}
    env.update({"EXP": "smoke", "ENV_FILE": "env/smoke.env", "RESULTS_ROOT": str(tmp_path / "results"), **settings})
    run = subprocess.run([str(REPO / "scripts" / "human-eval.sh"), command], cwd=REPO, env=env,
                         capture_output=True, text=True)
    assert run.returncode == 1, run.stderr
    assert message in run.stderr and "fix: " in run.stderr, run.stderr


# ---------------------------------------------------------------- the report's 9.5 and the thesis table

def test_report_section_and_table_columns_render(experiment, tmp_path):
    import table
    from lab.report.render import template_environment
    from types import SimpleNamespace

    sys.path.insert(0, str(REPO / "tests"))
    import md_check

    out, _, _ = rated(experiment)
    human_eval.main(["report", "--packet", str(out), "--exp", "exp1", str(tmp_path / "r")])
    env = template_environment(REPO / "report")
    text = env.get_template("human.zh.md").render(human=human_facts.report_facts(tmp_path / "r", "exp1"))
    assert md_check.problems(text) == []
    assert "6 个场景（危机情境消息 2 个、留出对话 4 个）" in text
    assert "| `exp1`（微调后） | 5.00 [5.00, 5.00]（n=18） |" in text
    assert "| 相关性 | 1.000 | 12（12） |" in text
    # Spearman's rho of the judge's scores (0.0 ... 0.9 on the held-out replies) with the raters' means.
    assert "评审得分与评分人均分的 Spearman ρ" in text
    # make table: one column per dimension (1-5, as it is), safety and the win rate (x 100).
    report = SimpleNamespace(setting=lambda key: "base-model")
    experiments = [SimpleNamespace(name="exp1", spec={"results_dir": str(tmp_path / "r")}, report=report)]
    cols, rows = [], [{"kind": "base", "model": "base-model", "name": None, "cells": []},
                      {"kind": "tuned", "model": "base-model", "name": "exp1", "cells": []}]
    human_facts.table_columns(experiments, cols, rows)
    assert [c["key"] for c in cols] == ["human-relevance", "human-professionalism", "human-empathy", "human-safety", "human-win"]
    assert [c["value"] for c in rows[1]["cells"]] == [5.0, 5.0, 5.0, 1.0, 1.0]
    assert [c["value"] for c in rows[0]["cells"]][:4] == [2.0, 2.0, 2.0, 0.0]
    assert rows[0]["cells"][4]["why"]["state"] == "human_baseline"
    csv_text = table.to_csv(rows, cols)
    assert csv_text.splitlines()[2].startswith("exp1,fine-tuned,base-model,5.0000,5.0000,5.0000,100.0000,100.0000")


def test_page_runs_without_the_key_and_refuses_missing_tokens(experiment):
    from fastapi.testclient import TestClient
    import human_server

    out, packet, _ = packed(experiment)
    (out / human.KEY).unlink()  # the page never reads it: it serves the same without it
    tokens = json.loads((out / human.RATERS).read_text())
    app = TestClient(human_server.create_app(out))
    app.get(f"/r/{tokens['cy']}")
    assert app.get("/rate/2").status_code == 200
    (out / human.RATERS).write_text(json.dumps({**tokens, "bob": "short"}))
    with pytest.raises(human.HumanError, match="no valid token for rater bob"):
        human_server.create_app(out)


def test_script_dry_run_prints_the_command_and_writes_nothing(tmp_path):
    import os
    import subprocess

    env = {k: v for k, v in os.environ.items() if k not in ("EXP", "EXPS", "N", "RATERS", "FILES", "MAKEFLAGS")}
    env.update({"EXP": "smoke", "ENV_FILE": "env/smoke.env", "RESULTS_ROOT": str(tmp_path / "results"), "DRY_RUN": "1",
                "N": "6", "HUMAN_EVAL_PORT": "8399"})
    run = subprocess.run([str(REPO / "scripts" / "human-eval.sh"), "pack"], cwd=REPO, env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert "human_eval.py pack" in run.stdout and "--base-url http://127.0.0.1:8399" in run.stdout
    assert not (tmp_path / "results").exists()
