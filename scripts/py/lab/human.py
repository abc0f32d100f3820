"""The blind human evaluation of counselling replies (make human-pack, human-eval, human-report).

A packet is drawn from the replies the evaluations already made (EvalScope's reviews of the
counselling benchmarks: the report sections dialog and judge), never generated again:

  packet.json   what the rating page may show: items in random order, each a scenario (the
                conversation up to the user's last turn) and two replies under opaque ids; the
                raters; the dimensions. No model name, no benchmark, nothing that says who wrote what.
  key.json      which model wrote which reply (and the benchmark, its row, the judge's score):
                read only by make human-report, never by the page (mode 600).
  raters.json   each rater's token (mode 600); links.txt their personal links.

Draw: the scenarios every model of the packet answered, grouped by source (the held-out
conversations, the crisis messages, any other reply benchmark such as an external test set),
N of them split over the sources in proportion to their sizes (largest remainders), each
source's share drawn at random; seeded (the same inputs and seed give the same packet). With
more than two models each scenario gets one pair of them, the pairs taking turns.
Sides: per rater, which reply is A is drawn from the seed and the rater's id, half each way.
The reply is the final channel only (scripts/py/harmony.py; EvalScope's review keeps the split
in the message's metadata.harmony): a reply with no final channel is shown as empty.
"""
from __future__ import annotations

import hashlib
import itertools
import json
import random
import re
import secrets
from pathlib import Path

import eval_suite
import harmony
import paired
import runparse as rp
from lab.files import write_atomic, write_json_atomic

SCHEMA = 1
DIMENSIONS = ("relevance", "professionalism", "empathy")  # 1-5 each, per reply
SCALE = (1, 2, 3, 4, 5)
SAFETY = ("pass", "fail")
PREFERENCE = ("A", "B", "tie")
REPLY_SECTIONS = ("judge", "dialog")  # the reply benchmarks, judged first: the judge scored those replies
RATER_ID = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
DEFAULT_SEED = 20261205
PACKET, KEY, RATERS, LINKS, RATINGS, RESULTS = (
    "packet.json", "key.json", "raters.json", "links.txt", "ratings.sqlite", "results.json")
EXPERIMENT_RESULTS = "lab-human.json"  # results/<exp>/lab-human.json: what the report and the table read


class HumanError(Exception):
    """A bad input: what is wrong and how to fix it (printed as error: / fix:)."""

    def __init__(self, reason: str, fix: str):
        super().__init__(reason)
        self.reason, self.fix = reason, fix


# ---------------------------------------------------------------- reading the replies

def final_text(message: dict) -> str:
    """The final channel of a reply as the evaluation scored it: metadata.harmony.final when
    the reply was split (None: it has none, shown empty), else the message's text (a model
    without channels, answer mode plain), split here if it still carries harmony markup."""
    split = (message.get("metadata") or {}).get("harmony")
    if isinstance(split, dict):
        return split.get("final") or ""
    text = rp.message_text(message)
    if "<|channel|>" in text:
        return harmony.parse_reply(text, prefilled_final=False).final or ""
    return text


def scenario_turns(messages: list[dict]) -> list[dict]:
    """The conversation the model answered: every user and assistant turn before its reply."""
    turns = []
    for message in messages[:-1]:
        if message.get("role") in ("user", "assistant"):
            turns.append({"role": message["role"], "content": rp.message_text(message)})
    return turns


def scenario_key(turns: list[dict]) -> str:
    return hashlib.sha256(json.dumps(turns, ensure_ascii=False, sort_keys=True).encode()).hexdigest()


def reply_benchmarks(eval_yaml: Path) -> list[dict]:
    """The experiment's benchmarks that asked for counselling replies, judged ones first:
    {name, section, source} where source is the stratum of its scenarios (heldout, the local
    set's folder name such as crisis, else the benchmark's name)."""
    config = eval_suite.resolve(eval_yaml)
    found = []
    for name in config.get("benchmarks") or []:
        section = config.get(name) or {}
        if section.get("section") not in REPLY_SECTIONS or section.get("kind") == "perf":
            continue
        if section.get("source") == "heldout":
            source = "heldout"
        elif section.get("local_path"):
            source = Path(str(section["local_path"])).name
        else:
            source = name
        found.append({"name": name, "section": section["section"], "source": source,
                      "dataset": section.get("dataset") or ""})
    return sorted(found, key=lambda b: REPLY_SECTIONS.index(b["section"]))


def read_replies(work_dir: Path, served: str) -> list[dict]:
    """The rows of one finished evaluation: {index, turns, text, judge} (judge: its score when
    a judge scored that reply validly, else None). Nothing when it did not finish."""
    result = rp.read_eval_result(work_dir)
    if result["state"] != "done":
        return []
    rows = []
    for path in sorted((work_dir / "reviews" / served).glob("*.jsonl")):
        records, _ = rp.read_jsonl(path)
        for record in records:
            messages = record.get("messages") or []
            if not messages or messages[-1].get("role") != "assistant" or not isinstance(record.get("index"), int):
                continue
            scores = paired.sample_scores(record) if record.get("sample_score") else None
            judged = (scores or {}).get("score") if result.get("judge") is not None else None
            if (result.get("judge") or {}).get("placeholder"):
                judged = None  # the served model judging itself: no verdict to compare with
            rows.append({"index": record["index"], "subset": path.stem, "turns": scenario_turns(messages),
                         "text": final_text(messages[-1]), "judge": judged})
    return rows


def collect_scenarios(systems: list[dict]) -> dict:
    """{scenario key: {source, turns, replies: {served: {benchmark, index, text, judge}}}} over
    every reply benchmark of each system's experiment; a model's reply to a scenario comes from
    its first benchmark (judged first) that has it."""
    scenarios: dict[str, dict] = {}
    for system in systems:
        for bench in system["benchmarks"]:
            work_dir = system["results_dir"] / system["served"] / bench["name"]
            for row in read_replies(work_dir, system["served"]):
                key = scenario_key(row["turns"])
                scenario = scenarios.setdefault(key, {"source": bench["source"], "turns": row["turns"], "replies": {}})
                scenario["replies"].setdefault(system["served"], {
                    "benchmark": bench["name"], "index": row["index"], "subset": row["subset"],
                    "text": row["text"], "judge": row["judge"]})
    return scenarios


# ---------------------------------------------------------------- the draw

def allocate(sizes: dict, n: int) -> dict:
    """N split over the sources in proportion to their sizes, largest remainders first (ties:
    the source's name), never more than a source has."""
    total = sum(sizes.values())
    exact = {s: n * size / total for s, size in sizes.items()}
    shares = {s: int(v) for s, v in exact.items()}
    order = sorted(sizes, key=lambda s: (-(exact[s] - shares[s]), s))
    for source in itertools.islice(itertools.cycle(order), 10 * len(order) + n):
        if sum(shares.values()) >= n:
            break
        if shares[source] < sizes[source]:
            shares[source] += 1
    return shares


def draw(scenarios: dict, served: list[str], n: int, seed: int) -> list[str]:
    """The keys of N scenarios every model answered, stratified by source, in random order."""
    eligible = {k: s for k, s in scenarios.items() if all(m in s["replies"] for m in served)}
    by_source: dict[str, list[str]] = {}
    for key in sorted(eligible):
        by_source.setdefault(eligible[key]["source"], []).append(key)
    available = sum(len(keys) for keys in by_source.values())
    if n < 1:
        raise HumanError(f"N={n}: a packet needs at least one scenario", "pass N=120 (or any number from 1)")
    if n > available:
        counts = ", ".join(f"{s} {len(k)}" for s, k in sorted(by_source.items())) or "none"
        raise HumanError(f"N={n} but only {available} scenarios have a reply of every model ({counts})",
                         f"pass N={available} or fewer, or evaluate more rows (rows in eval.yaml) first")
    rng = random.Random(seed)
    chosen = []
    for source, share in sorted(allocate({s: len(k) for s, k in by_source.items()}, n).items()):
        chosen += rng.sample(by_source[source], share)
    rng.shuffle(chosen)
    return chosen


def sides(packet: dict, rater: str) -> dict:
    """{item id: True when the item's first reply is A for this rater}: half each way, shuffled
    with the packet's seed and the rater's id."""
    ids = [item["id"] for item in packet["items"]]
    flips = [i < (len(ids) + 1) // 2 for i in range(len(ids))]
    random.Random(f"{packet['seed']}/sides/{rater}").shuffle(flips)
    return dict(zip(ids, flips))


def side_replies(packet_item: dict, first_is_a: bool) -> dict:
    """{"A": reply id, "B": reply id} of an item for a rater."""
    first, second = (r["id"] for r in packet_item["replies"])
    return {"A": first, "B": second} if first_is_a else {"A": second, "B": first}


def build(systems: list[dict], n: int, seed: int, raters: list[str]) -> tuple[dict, dict]:
    """The packet and its key. systems: [{served, experiment, results_dir, benchmarks}]."""
    served = [s["served"] for s in systems]
    if len(set(served)) != len(served) or len(served) < 2:
        raise HumanError(f"a packet compares at least two models; got {', '.join(served) or 'none'}",
                         "name the experiments with EXPS=\"a b\"; each brings its fine-tuned and base model")
    check_raters(raters)
    scenarios = collect_scenarios(systems)
    chosen = draw(scenarios, served, n, seed)
    rng = random.Random(f"{seed}/ids")
    pairs = list(itertools.combinations(served, 2))
    rng.shuffle(pairs)
    used: set[str] = set()

    def reply_id() -> str:
        while True:
            rid = f"r{rng.getrandbits(48):012x}"
            if rid not in used:
                used.add(rid)
                return rid

    items, key_items, key_replies = [], {}, {}
    for number, scenario_hash in enumerate(chosen, 1):
        scenario = scenarios[scenario_hash]
        pair = list(pairs[(number - 1) % len(pairs)])
        rng.shuffle(pair)
        item_id = f"s{number:03d}"
        replies = []
        for model in pair:
            rid = reply_id()
            reply = scenario["replies"][model]
            replies.append({"id": rid, "text": reply["text"]})
            key_replies[rid] = {"item": item_id, "model": model,
                                "experiment": next(s["experiment"] for s in systems if s["served"] == model),
                                "benchmark": reply["benchmark"], "index": reply["index"], "judge": reply["judge"]}
        items.append({"id": item_id, "source": scenario["source"], "turns": scenario["turns"], "replies": replies})
        key_items[item_id] = {"scenario": scenario_hash, "source": scenario["source"]}
    packet = {"schema": SCHEMA, "seed": seed, "n": n, "dimensions": list(DIMENSIONS), "scale": list(SCALE),
              "raters": list(raters), "items": items}
    packet["digest"] = packet_digest(packet)
    key = {"schema": SCHEMA, "packet_digest": packet["digest"], "models": served,
           "experiments": list(dict.fromkeys(s["experiment"] for s in systems)),
           "sources": dict(sorted(source_counts(items).items())), "items": key_items, "replies": key_replies}
    return packet, key


def source_counts(items: list[dict]) -> dict:
    counts: dict[str, int] = {}
    for item in items:
        counts[item["source"]] = counts.get(item["source"], 0) + 1
    return counts


def packet_digest(packet: dict) -> str:
    """What the ratings refer to: the items and their replies (not the raters, who may be added)."""
    body = {k: packet[k] for k in ("schema", "seed", "items")}
    return hashlib.sha256(json.dumps(body, ensure_ascii=False, sort_keys=True).encode()).hexdigest()


def check_raters(raters: list[str]) -> None:
    if not raters:
        raise HumanError("no raters", "pass RATERS=\"r1 r2 r3\" (ids: lower-case letters, digits, - and _)")
    for rater in raters:
        if not RATER_ID.match(rater):
            raise HumanError(f"rater id '{rater}' is not valid",
                             "use lower-case letters, digits, - and _, starting with a letter, at most 32 characters")
    if len(set(raters)) != len(raters):
        raise HumanError("a rater is named twice in RATERS", "name each rater once")


# ---------------------------------------------------------------- writing and reading a packet

def write_packet(out: Path, packet: dict, key: dict, base_url: str) -> dict:
    """Writes packet.json, key.json (600), raters.json (600: tokens, kept for raters already
    there) and links.txt (600). A packet whose ratings began is only replaced by the same items."""
    out.mkdir(parents=True, exist_ok=True)
    old = read_json(out / PACKET)
    if old and old.get("digest") != packet["digest"] and (out / RATINGS).is_file():
        raise HumanError(f"{out / PACKET} has other items and its ratings have begun ({out / RATINGS})",
                         f"rate that packet to the end, or move {out} aside to draw a new one")
    tokens = read_json(out / RATERS) or {}
    tokens = {r: tokens.get(r) or secrets.token_urlsafe(24) for r in packet["raters"]}
    write_private(out / KEY, json.dumps(key, ensure_ascii=False, indent=2) + "\n")
    write_private(out / RATERS, json.dumps(tokens, indent=2) + "\n")
    write_private(out / LINKS, "".join(f"{r}\t{base_url}/r/{t}\n" for r, t in tokens.items()))
    write_json_atomic(out / PACKET, packet)
    return tokens


def write_private(path: Path, text: str) -> None:
    write_atomic(path, text)
    path.chmod(0o600)


def read_json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except ValueError as error:
        raise HumanError(f"{path} is not JSON ({error})", "restore it, or draw the packet again with make human-pack")


def load_packet(out: Path) -> dict:
    packet = read_json(out / PACKET)
    if not packet:
        raise HumanError(f"no packet in {out}", "draw it first: make human-pack")
    if packet.get("schema") != SCHEMA or packet.get("digest") != packet_digest(packet):
        raise HumanError(f"{out / PACKET} was changed by hand or by another version", "draw it again: make human-pack")
    return packet


def load_key(out: Path, packet: dict) -> dict:
    key = read_json(out / KEY)
    if not key:
        raise HumanError(f"no key in {out} ({KEY})", "the key is written by make human-pack beside its packet; restore it")
    if key.get("packet_digest") != packet["digest"]:
        raise HumanError(f"{out / KEY} belongs to another packet", "restore the key written with this packet")
    return key
