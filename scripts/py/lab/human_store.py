"""The ratings of a packet: SQLite in WAL mode, each answer committed when it is given (a
killed server loses nothing given), and the checks every answer passes, from the page or from
an imported file alike.

An answer is (rater, item, field, reply, value): field relevance | professionalism | empathy
(value 1-5) or safety (pass | fail) of one reply (its opaque id), preference (value: the
preferred reply's id, or tie) or comment (free text) of the item (reply "")."""
from __future__ import annotations

import csv
import datetime as dt
import io
import json
import sqlite3
from pathlib import Path

from lab.human import DIMENSIONS, PREFERENCE, SAFETY, SCALE, HumanError, side_replies, sides

ITEM_FIELDS = ("preference", "comment")
REPLY_FIELDS = DIMENSIONS + ("safety",)
COMMENT_MAX = 2000
SCHEMA = """
CREATE TABLE IF NOT EXISTS answers (
  rater TEXT NOT NULL, item TEXT NOT NULL, field TEXT NOT NULL, reply TEXT NOT NULL DEFAULT '',
  value TEXT NOT NULL, given_at TEXT NOT NULL, via TEXT NOT NULL,
  PRIMARY KEY (rater, item, field, reply));
"""


def now() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def connect(path: Path) -> sqlite3.Connection:
    """The ratings database; WAL, and every commit on disk before it returns (synchronous FULL)."""
    db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False, timeout=10)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.executescript(SCHEMA)
    return db


def check_answer(packet: dict, rater: str, item: str, field: str, reply: str, value) -> str:
    """The value as stored, or HumanError naming what is wrong (unknown rater, item, reply or field,
    a value off the scale)."""
    if rater not in packet["raters"]:
        raise HumanError(f"unknown rater '{rater}'", f"use one of the packet's raters: {', '.join(packet['raters'])}")
    found = next((i for i in packet["items"] if i["id"] == item), None)
    if found is None:
        raise HumanError(f"unknown item '{item}'", f"use the packet's items: {packet['items'][0]['id']} ... {packet['items'][-1]['id']}")
    reply_ids = [r["id"] for r in found["replies"]]
    if field in REPLY_FIELDS:
        if reply not in reply_ids:
            raise HumanError(f"item {item}: unknown reply '{reply}'", "rate one of the item's two replies (A or B)")
        text = str(value).strip()
        if field == "safety":
            if text not in SAFETY:
                raise HumanError(f"item {item}: safety '{value}' is not pass or fail", "write pass or fail")
            return text
        if text not in {str(v) for v in SCALE}:
            raise HumanError(f"item {item}: {field} '{value}' is not on the scale {SCALE[0]}-{SCALE[-1]}",
                             f"write a whole number from {SCALE[0]} to {SCALE[-1]}")
        return text
    if field == "preference":
        text = str(value).strip()
        if text != "tie" and text not in reply_ids:
            raise HumanError(f"item {item}: preference '{value}' is neither a reply of the item nor tie",
                             "write A, B or tie")
        return text
    if field == "comment":
        text = str(value)
        if len(text) > COMMENT_MAX:
            raise HumanError(f"item {item}: the comment has {len(text)} characters", f"keep it under {COMMENT_MAX}")
        return text
    raise HumanError(f"unknown field '{field}'", f"use one of: {', '.join(REPLY_FIELDS + ITEM_FIELDS)}")


def give(db: sqlite3.Connection, packet: dict, rater: str, item: str, field: str, reply: str, value,
         via: str = "page") -> None:
    """One answer, checked, committed before this returns (the last one given wins)."""
    stored = check_answer(packet, rater, item, field, reply, value)
    with db:
        db.execute("BEGIN IMMEDIATE")
        db.execute("INSERT OR REPLACE INTO answers VALUES (?, ?, ?, ?, ?, ?, ?)",
                   (rater, item, field, reply if field in REPLY_FIELDS else "", stored, now(), via))


def answers(db: sqlite3.Connection, rater: str | None = None) -> list[dict]:
    query = "SELECT rater, item, field, reply, value, given_at, via FROM answers"
    rows = db.execute(query + (" WHERE rater = ?" if rater else "") + " ORDER BY rater, item, field, reply",
                      (rater,) if rater else ()).fetchall()
    return [dict(zip(("rater", "item", "field", "reply", "value", "given_at", "via"), row)) for row in rows]


def required_fields(item: dict) -> list[tuple[str, str]]:
    """What makes an item rated: every dimension and the safety of both replies, the preference."""
    return [(f, r["id"]) for r in item["replies"] for f in REPLY_FIELDS] + [("preference", "")]


def rater_progress(packet: dict, given: list[dict]) -> dict:
    """{item id: True when complete} of one rater's answers, in the packet's order."""
    have = {(a["item"], a["field"], a["reply"]) for a in given}
    return {item["id"]: all((item["id"], f, r) in have for f, r in required_fields(item)) for item in packet["items"]}


def as_sides(packet: dict, rater: str, given: list[dict]) -> dict:
    """One rater's answers as the page shows them: {item: {"A": {field: value}, "B": {...},
    "preference": A|B|tie, "comment": text}}."""
    flips = sides(packet, rater)
    by_item = {item["id"]: item for item in packet["items"]}
    shown: dict[str, dict] = {}
    for answer in given:
        item = by_item[answer["item"]]
        side_of = {rid: side for side, rid in side_replies(item, flips[item["id"]]).items()}
        entry = shown.setdefault(answer["item"], {"A": {}, "B": {}})
        if answer["field"] in REPLY_FIELDS:
            entry[side_of[answer["reply"]]][answer["field"]] = answer["value"]
        elif answer["field"] == "preference":
            entry["preference"] = side_of.get(answer["value"], "tie")
        else:
            entry["comment"] = answer["value"]
    return shown


# ---------------------------------------------------------------- export and import for raters who use a form

EXPORT_COLUMNS = ["rater", "item", "scenario", "reply_A", "reply_B"] + \
    [f"{field}_{side}" for side in ("A", "B") for field in REPLY_FIELDS] + ["preference", "comment"]


def scenario_text(item: dict) -> str:
    names = {"user": "来访者", "assistant": "咨询师"}
    return "\n".join(f"{names[t['role']]}：{t['content']}" for t in item["turns"])


def export_rows(packet: dict, rater: str) -> list[dict]:
    """The packet as one rater's form: their A/B sides, the answer columns empty."""
    flips = sides(packet, rater)
    text = {r["id"]: r["text"] for item in packet["items"] for r in item["replies"]}
    rows = []
    for item in packet["items"]:
        pair = side_replies(item, flips[item["id"]])
        row = {column: "" for column in EXPORT_COLUMNS}
        row.update(rater=rater, item=item["id"], scenario=scenario_text(item),
                   reply_A=text[pair["A"]], reply_B=text[pair["B"]])
        rows.append(row)
    return rows


def to_csv(rows: list[dict]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=EXPORT_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def read_form(path: Path) -> list[dict]:
    """A filled form: CSV with the export's header, or JSON (a list of such rows)."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        raise HumanError(f"cannot read {path} ({error})", "pass a UTF-8 CSV or JSON file written from make human-export")
    if path.suffix.lower() == ".json":
        try:
            rows = json.loads(text)
        except ValueError as error:
            raise HumanError(f"{path} is not JSON ({error})", "fix the file, or export it again as CSV")
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise HumanError(f"{path}: not a list of rows", "write a JSON list of objects with the export's columns")
        return rows
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in ("rater", "item") if c not in (reader.fieldnames or [])]
    if missing:
        raise HumanError(f"{path}: no column {', '.join(missing)}", "keep the header of the exported form")
    return list(reader)


def form_answers(packet: dict, rows: list[dict], where: str) -> list[tuple]:
    """Every answer of a filled form, checked: (rater, item, field, reply, value). An empty
    cell is no answer; any bad cell stops the whole import (HumanError naming row and column)."""
    found = []
    seen = set()
    for number, row in enumerate(rows, 2):
        at = f"{where} row {number}"
        rater, item_id = str(row.get("rater") or "").strip(), str(row.get("item") or "").strip()
        if rater not in packet["raters"]:
            raise HumanError(f"{at}: unknown rater '{rater}'", f"use one of the packet's raters: {', '.join(packet['raters'])}")
        item = next((i for i in packet["items"] if i["id"] == item_id), None)
        if item is None:
            raise HumanError(f"{at}: unknown item '{item_id}'", "keep the item ids of the exported form")
        if (rater, item_id) in seen:
            raise HumanError(f"{at}: item {item_id} of {rater} appears twice", "keep one row per item and rater")
        seen.add((rater, item_id))
        pair = side_replies(item, sides(packet, rater)[item_id])
        for side in ("A", "B"):
            for field in REPLY_FIELDS:
                value = str(row.get(f"{field}_{side}") or "").strip()
                if value:
                    found.append(checked(packet, at, f"{field}_{side}", rater, item_id, field, pair[side], value))
        preference = str(row.get("preference") or "").strip()
        if preference:
            if preference not in PREFERENCE:
                raise HumanError(f"{at}, column preference: '{preference}' is not A, B or tie", "write A, B or tie")
            value = pair.get(preference, "tie")
            found.append(checked(packet, at, "preference", rater, item_id, "preference", "", value))
        comment = str(row.get("comment") or "")
        if comment.strip():
            found.append(checked(packet, at, "comment", rater, item_id, "comment", "", comment))
    return found


def checked(packet, at, column, rater, item, field, reply, value) -> tuple:
    try:
        return rater, item, field, reply, check_answer(packet, rater, item, field, reply, value)
    except HumanError as error:
        raise HumanError(f"{at}, column {column}: {error.reason}", error.fix) from None


def import_answers(db: sqlite3.Connection, found: list[tuple], via: str) -> int:
    """All the answers in one transaction: every one or none."""
    given = now()
    with db:
        db.execute("BEGIN IMMEDIATE")
        db.executemany("INSERT OR REPLACE INTO answers VALUES (?, ?, ?, ?, ?, ?, ?)",
                       [(r, i, f, rep, v, given, via) for r, i, f, rep, v in found])
    return len(found)
