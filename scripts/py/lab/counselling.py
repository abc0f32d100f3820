"""Counselling-dialogue benchmarks as the field computes them (issue 21): turn-based rows from
whole dialogues, EmoLLM's BLEU/ROUGE on jieba words, and a test set's overlap with the
training set (contamination).

EmoLLM's metrics: SmartFlowAI/EmoLLM, evaluate/metric.py (compute_metrics, read at commit
955155bb536eb1c28ff4500c6dc6a093a24e8209), reproduced step for step:
  - tokenisation: spaces removed, then jieba.cut (word level, its default), words joined by
    a space and split on it again;
  - BLEU-1..4: nltk's sentence_bleu of each reply against its one reference, weights (1),
    (1/2, 1/2), (1/3, 1/3, 1/3), (1/4, 1/4, 1/4, 1/4), SmoothingFunction().method1, the
    mean over the replies;
  - ROUGE-1/2/L: the `rouge` package's Rouge().get_scores(avg=True) F-measure, i.e. the mean
    of each reply's F-measure (rouge-l is that package's summary-level LCS).
EmoLLM multiplies by 100; we keep fractions (0-1), as every other score of lab-eval.json.
One departure: the `rouge` package raises on an empty reply (EmoLLM's run would stop); here an
empty reply scores 0 on ROUGE, and its BLEU is nltk's on the one empty word it splits into.
"""
from __future__ import annotations

import json
import unicodedata
import warnings
from pathlib import Path
from typing import Iterable, Iterator

EMOLLM_SOURCE = "SmartFlowAI/EmoLLM evaluate/metric.py"
BLEU_WEIGHTS = [(1.0, 0.0, 0.0, 0.0), (1.0 / 2.0, 1.0 / 2.0), (1.0 / 3.0, 1.0 / 3.0, 1.0 / 3.0),
                (1.0 / 4.0, 1.0 / 4.0, 1.0 / 4.0, 1.0 / 4.0)]
EMOLLM_METRICS = ("bleu-1", "bleu-2", "bleu-3", "bleu-4", "rouge-1-f1", "rouge-2-f1", "rouge-l-f1")
# The primary score of an EmoLLM-scored benchmark (its report and SwanLab headline).
EMOLLM_PRIMARY = "rouge-l-f1"


# ---------------------------------------------------------------- EmoLLM's metrics

def emollm_words(text: str) -> str:
    """EmoLLM's word-level decoding: spaces dropped, jieba words joined by one space."""
    import jieba

    return " ".join(jieba.cut(str(text).replace(" ", "")))


def nltk_bleu_score():
    """nltk's own nltk.translate.bleu_score module, imported without running the `nltk` and
    `nltk.translate` package __init__s, which import most of nltk (1.6 s of a 2 s scoring run on
    2 cores, for a module that needs only nltk.util). The code is nltk's, so are the scores.
    Placeholder parents are put in sys.modules for the import and removed after: a later
    `import nltk` runs the real __init__, which finds this module already loaded (reach it by
    `from nltk.translate.bleu_score import ...`: the real package has no attribute for it)."""
    import importlib
    import importlib.util
    import sys
    import types

    name = "nltk.translate.bleu_score"
    if name in sys.modules or "nltk" in sys.modules:
        return importlib.import_module(name)
    root = importlib.util.find_spec("nltk").submodule_search_locations[0]
    placeholders = {"nltk": root, "nltk.translate": f"{root}/translate"}
    for package, path in placeholders.items():
        module = types.ModuleType(package)
        module.__path__ = [path]
        sys.modules[package] = module
    try:
        return importlib.import_module(name)
    finally:
        for package in placeholders:
            del sys.modules[package]


def emollm_sample(prediction: str, reference: str) -> dict:
    """One reply's BLEU-1..4 and ROUGE-1/2/L F-measure, as EmoLLM's compute_metrics sums them."""
    from rouge import Rouge

    bleu_score = nltk_bleu_score()
    SmoothingFunction, sentence_bleu = bleu_score.SmoothingFunction, bleu_score.sentence_bleu  # noqa: N806

    pred, ref = emollm_words(prediction), emollm_words(reference)
    with warnings.catch_warnings():  # nltk warns on every reply without a matching n-gram
        warnings.simplefilter("ignore", UserWarning)
        bleu = sentence_bleu(references=[ref.split(" ")], hypothesis=pred.split(" "),
                             smoothing_function=SmoothingFunction().method1, weights=BLEU_WEIGHTS)
    try:
        rouge = Rouge().get_scores([pred], [ref])[0]
    except ValueError:  # "Hypothesis is empty."
        rouge = {key: {"f": 0.0} for key in ("rouge-1", "rouge-2", "rouge-l")}
    values = {f"bleu-{n}": float(bleu[n - 1]) for n in range(1, 5)}
    values.update({f"{key}-f1": float(rouge[key]["f"]) for key in ("rouge-1", "rouge-2", "rouge-l")})
    return values


def emollm_scores(samples: list[dict]) -> dict:
    """The means over the replies (EmoLLM's `bleu /= len(...)` and Rouge's avg=True)."""
    if not samples:
        return {}
    return {key: sum(s[key] for s in samples) / len(samples) for key in EMOLLM_METRICS}


# ---------------------------------------------------------------- turn-based rows

def clean_messages(messages: Iterable) -> list[dict]:
    """user/assistant messages of an OpenAI-format dialogue (system prompts left out: the server
    applies the experiment's own, as for the held-out rows)."""
    kept = []
    for message in messages or []:
        if isinstance(message, str):
            message = json.loads(message)
        if isinstance(message, dict) and message.get("role") in ("user", "assistant"):
            kept.append({"role": message["role"], "content": str(message.get("content") or "")})
    return kept


def turn_rows(messages: list[dict]) -> list[dict]:
    """One general_qa row per counsellor turn answering a client turn: the gold history before
    it as `messages`, the counsellor's reply as `answer` (CPsyCoun's turn-based evaluation)."""
    rows = []
    for index, message in enumerate(messages):
        if (message["role"] == "assistant" and index > 0 and messages[index - 1]["role"] == "user"
                and message["content"].strip()):
            rows.append({"messages": messages[:index], "answer": message["content"]})
    return rows


def dialogue_turn_rows(dialogues: Iterable[list]) -> list[dict]:
    """Every counsellor turn of the dialogues, each once: a source that already split its
    dialogues into prefixes (PsyDTCorpus's test file) gives each turn once, not once per prefix."""
    rows, seen = [], set()
    for messages in dialogues:
        for row in turn_rows(clean_messages(messages)):
            key = json.dumps(row, ensure_ascii=False, sort_keys=True)
            if key not in seen:
                seen.add(key)
                rows.append(row)
    return rows


# ---------------------------------------------------------------- contamination

# A match of this many characters (after normalising) between a test reply and a training reply
# counts as overlap: about 13 Chinese words, the n-gram length of GPT-3's contamination check.
CONTAMINATION_NGRAM = 20
DEFAULT_CONTAMINATION_LIMIT = 0.05


def normalise(text: str) -> str:
    """NFKC, lower case, without whitespace and punctuation: formatting is no difference."""
    text = unicodedata.normalize("NFKC", str(text)).lower()
    return "".join(ch for ch in text if not ch.isspace() and unicodedata.category(ch)[0] not in "PZ")


def char_ngrams(text: str, n: int) -> set[str]:
    return {text[i:i + n] for i in range(len(text) - n + 1)}


def reply_texts(row: dict) -> Iterator[str]:
    """The counsellor replies of one training row: ShareGPT `conversations` (from gpt) or
    OpenAI `messages` (role assistant), a `response`/`output`/`answer` field otherwise."""
    for turn in row.get("conversations") or []:
        if isinstance(turn, dict) and turn.get("from") in ("gpt", "assistant"):
            yield str(turn.get("value") or "")
    for message in clean_messages(row.get("messages")):
        if message["role"] == "assistant":
            yield message["content"]
    for key in ("response", "output", "answer"):
        if isinstance(row.get(key), str):
            yield row[key]


def read_rows(path: Path) -> Iterator[dict]:
    """The rows of a JSON Lines file, or of a JSON list."""
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json":
        value = json.loads(text)
        yield from (value if isinstance(value, list) else [value])
        return
    for line in text.splitlines():
        if line.strip():
            yield json.loads(line)


def data_files(location: Path) -> list[Path]:
    """A dataset file, or the .jsonl/.json files of a downloaded dataset folder."""
    if location.is_file():
        return [location]
    return sorted(p for p in location.rglob("*") if p.is_file() and p.suffix in (".jsonl", ".json")
                  and not p.name.startswith("."))


def contamination(test_replies: list[str], train_replies: Iterable[str], n: int = CONTAMINATION_NGRAM,
                  limit: float = DEFAULT_CONTAMINATION_LIMIT) -> dict:
    """The share of test replies sharing an n-character run with a training reply, and the
    exact duplicates. Test n-grams are held in memory, the training replies streamed."""
    tests = [normalise(t) for t in dict.fromkeys(test_replies) if normalise(t)]
    owners: dict[str, set[int]] = {}
    for index, text in enumerate(tests):
        for gram in char_ngrams(text, n) or {text}:  # a reply shorter than n matches only whole
            owners.setdefault(gram, set()).add(index)
    exact_texts = {text: index for index, text in enumerate(tests)}
    matched, exact, train_count = set(), set(), 0
    for reply in train_replies:
        text = normalise(reply)
        if not text:
            continue
        train_count += 1
        if text in exact_texts:
            exact.add(exact_texts[text])
        grams = char_ngrams(text, n) if len(text) >= n else {text}
        for gram in grams:
            if gram in owners:
                matched |= owners[gram]
    share = len(matched) / len(tests) if tests else 0.0
    return {"test_replies": len(tests), "train_replies": train_count, "ngram_chars": n,
            "ngram_matches": len(matched), "ngram_share": round(share, 4),
            "exact_duplicates": len(exact), "exact_share": round(len(exact) / len(tests), 4) if tests else 0.0,
            "limit": limit, "flagged": share > limit}


def rows_of_set(folder: Path) -> list[dict]:
    """The general_qa rows of an evaluation set (every DIR/*.jsonl but the perf prompts)."""
    rows = []
    for path in sorted(folder.glob("*.jsonl")):
        rows.extend(read_rows(path))
    return rows


# ---------------------------------------------------------------- scoring EvalScope's replies

SCORES_FILE = "lab-scores.jsonl"  # per reply, beside EvalScope's reviews (scripts/py/paired.py reads it)


def review_rows(work_dir: Path) -> Iterator[tuple[str, dict]]:
    """(review file stem, row) of EvalScope's reviews (reviews/<served>/<dataset>_<subset>.jsonl)."""
    for path in sorted((Path(work_dir) / "reviews").glob("*/*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                yield path.stem, json.loads(line)


def rescore_emollm(work_dir: Path, dataset: str = "general_qa") -> dict:
    """EmoLLM's metrics of the replies EvalScope scored (the final channel, as its reviews hold
    it), against their references: {metrics, num, subsets}. Writes each reply's scores to
    SCORES_FILE (subset, index, target, values) for the paired tests."""
    prefix, samples, by_subset, lines = f"{dataset}_", [], {}, []
    for stem, row in review_rows(work_dir):
        score = (row.get("sample_score") or {}).get("score") or {}
        target = row.get("target")
        reference = target[0] if isinstance(target, list) and target else str(target or "")
        prediction = score.get("extracted_prediction") or score.get("prediction") or ""
        values = emollm_sample(prediction, reference)
        subset = stem[len(prefix):] if stem.startswith(prefix) else stem
        samples.append(values)
        by_subset.setdefault(subset, []).append(values)
        lines.append(json.dumps({"subset": subset, "index": row.get("index"), "target": target,
                                 "values": {**values, "score": values[EMOLLM_PRIMARY]}}, ensure_ascii=False))
    from lab.files import write_atomic

    write_atomic(Path(work_dir) / SCORES_FILE, "".join(line + "\n" for line in lines))
    return {"metrics": emollm_scores(samples), "num": len(samples),
            "subsets": [{"name": name, "score": emollm_scores(rows)[EMOLLM_PRIMARY], "num": len(rows)}
                        for name, rows in by_subset.items()]}


# ---------------------------------------------------------------- CPsyCounE, judged turn by turn

# CPsyCoun's four dimensions and their ranges (Zhang et al., ACL Findings 2024;
# CAS-SIAT-XinHai/CPsyCoun, Code/Turn_Based_Dialogue_Evaluation.ipynb): the judge's [C, P, A, S].
CPSYCOUNE_DIMENSIONS = {"comprehensiveness": 2, "professionalism": 3, "authenticity": 3, "safety": 1}
CPSYCOUNE_ROLES = {"求助者": "user", "支持者": "assistant"}
TURNS_FILE = "turns.json"  # beside a turn-based set: the case each row (by index) comes from


def case_messages(utterances: list[str]) -> list[dict]:
    """A CPsyCounE case (a list of "求助者：…" / "支持者：…" lines) as chat messages."""
    messages = []
    for line in utterances:
        speaker, sep, text = str(line).partition("：")
        role = CPSYCOUNE_ROLES.get(speaker.strip()) if sep else None
        if role is None:
            raise ValueError(f"a line without 求助者：/支持者： ({str(line)[:20]}…)")
        messages.append({"role": role, "content": text.strip()})
    return messages


def client_turn_rows(messages: list[dict]) -> list[dict]:
    """CPsyCoun's turn-based prompts: one per client turn, the history up to and including it;
    the counsellor's reply that followed it as `answer` ("" after the last one: the judge needs none)."""
    rows = []
    for index, message in enumerate(messages):
        if message["role"] == "user":
            following = messages[index + 1] if index + 1 < len(messages) else None
            rows.append({"messages": messages[:index + 1],
                         "answer": following["content"] if following and following["role"] == "assistant" else ""})
    return rows


def dimensions_of(raw: str) -> dict | None:
    """The four dimensions of one judge reply (a JSON object), each within its range, else None."""
    for start in [i for i, ch in enumerate(str(raw or "")) if ch == "{"]:
        try:
            value, _ = json.JSONDecoder().raw_decode(raw[start:])
        except ValueError:
            continue
        if not isinstance(value, dict):
            continue
        scores = {}
        for name, top in CPSYCOUNE_DIMENSIONS.items():
            number = value.get(name)
            if isinstance(number, bool) or not isinstance(number, (int, float)) or not 0 <= number <= top:
                break
            scores[name] = float(number)
        else:
            return scores
    return None


def normalised(scores: dict) -> float:
    """The mean of the dimensions each divided by its maximum: one 0-1 figure per turn."""
    return sum(scores[name] / top for name, top in CPSYCOUNE_DIMENSIONS.items()) / len(CPSYCOUNE_DIMENSIONS)


def judge_replies(score: dict) -> list[str]:
    """The judge's raw replies EvalScope keeps with a review (metadata.judge_attempts)."""
    attempts = (score.get("metadata") or {}).get("judge_attempts") or []
    return [str(a.get("raw_response") or "") for a in attempts if isinstance(a, dict)]


def rescore_cpsycoune(work_dir: Path, cases: list[str], dataset: str = "general_qa") -> dict:
    """CPsyCounE as CPsyCoun and EmoLLM report it: each turn's four dimensions from the judge's
    reply, averaged per dialogue (the notebook's `Average Scores`), then each dimension's mean
    over the dialogues. cases[i] names the case of row i. Writes each turn's normalised score to
    SCORES_FILE. {metrics, num (turns with a valid verdict), dialogues, asked}."""
    prefix, per_case, lines, asked = f"{dataset}_", {}, [], 0
    for stem, row in review_rows(work_dir):
        asked += 1
        score = (row.get("sample_score") or {}).get("score") or {}
        found = next((d for d in map(dimensions_of, judge_replies(score)) if d), None)
        index = row.get("index")
        if found is None or not isinstance(index, int) or index >= len(cases):
            continue
        per_case.setdefault(cases[index], []).append(found)
        subset = stem[len(prefix):] if stem.startswith(prefix) else stem
        lines.append(json.dumps({"subset": subset, "index": index, "target": row.get("target"),
                                 "values": {**found, "score": normalised(found)}}, ensure_ascii=False))
    from lab.files import write_atomic

    write_atomic(Path(work_dir) / SCORES_FILE, "".join(line + "\n" for line in lines))
    dialogue_means = [{name: sum(t[name] for t in turns) / len(turns) for name in CPSYCOUNE_DIMENSIONS}
                      for turns in per_case.values()]
    metrics = {name: sum(d[name] for d in dialogue_means) / len(dialogue_means) for name in CPSYCOUNE_DIMENSIONS} \
        if dialogue_means else {}
    return {"metrics": metrics, "num": len(lines), "dialogues": len(dialogue_means), "asked": asked}
