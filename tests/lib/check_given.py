"""Every answer the simulated raters saw saved (rate_in_chromium.py's JSON lines) is in the
packet's ratings, with its value, on the reply the rater saw on that side (tests/smoke/human.bats).

  check_given.py PACKET_DIR GIVEN.jsonl      prints the number checked; exit 1 naming a lost answer"""
import json
import sqlite3
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts" / "py"))
from lab import human  # noqa: E402

packet_dir, given_file = Path(sys.argv[1]), Path(sys.argv[2])
packet = human.load_packet(packet_dir)
items = {item["id"]: item for item in packet["items"]}
db = sqlite3.connect(packet_dir / human.RATINGS)  # WAL: what was committed, the server killed or not
stored = {(r, i, f, rep): v for r, i, f, rep, v in db.execute("SELECT rater, item, field, reply, value FROM answers")}
last = {}
for line in given_file.read_text(encoding="utf-8").splitlines():
    answer = json.loads(line)
    pair = human.side_replies(items[answer["item"]], human.sides(packet, answer["rater"])[answer["item"]])
    reply = pair[answer["side"]] if answer["side"] else ""
    value = pair.get(answer["value"], answer["value"]) if answer["field"] == "preference" else answer["value"]
    last[(answer["rater"], answer["item"], answer["field"], reply)] = value
lost = [f"{k} = {v!r} (stored: {stored.get(k)!r})" for k, v in last.items() if stored.get(k) != v]
if lost:
    print("lost or changed answers:\n  " + "\n  ".join(lost), file=sys.stderr)
    sys.exit(1)
print(len(last))
