"""CPsyCounE's 45 cases, turn by turn, in the general_qa layout EvalScope 1.14 loads from a
local_path (issue 21, point 4b).

  fetch_cpsycoune.py --out DIR [--repo OWNER/NAME] [--revision COMMIT] [--local CPsyCounE_DIR]

Downloads the GitHub repository CAS-SIAT-XinHai/CPsyCoun (ACL Findings 2024) at a pinned commit
(its codeload zip) and reads CPsyCounE/<topic>/<n>.json: nine topics x five cases, each a JSON
list of "求助者：…" / "支持者：…" lines. Writes, atomically (lab.files.write_folder_atomic: a sweep's experiments may fetch it at once):
  DIR/cpsycoune.jsonl  one row per client turn, as CPsyCoun's Turn_Based_Dialogue_Evaluation
                       builds its prompts: the history up to and including that turn as `messages`
                       (the counsellor's reply that followed it as `answer`, for reading only: the
                       judge is reference-free)
  DIR/turns.json       the case ("<topic>/<n>") of each row, in order: the per-dialogue averages
  DIR/SOURCE.json      repo, revision, cases, turns, licence.
--local reads a checkout's CPsyCounE folder instead. Needs the network once (GitHub).
Licence: CC BY 4.0 (the repository's LICENSE).
"""
from __future__ import annotations

import argparse
import io
import json
import sys
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from lab.counselling import TURNS_FILE, case_messages, client_turn_rows  # noqa: E402
from lab.files import write_folder_atomic  # noqa: E402

REPO = "CAS-SIAT-XinHai/CPsyCoun"
REVISION = "1954f2e2d01d3b0f568e1673a525a6d3d9a34c03"  # read 2026-12-05
SUBSET = "cpsycoune"
LICENCE = "CC BY 4.0 (CPsyCoun's LICENSE)"


def case_key(path: str) -> tuple:
    topic, _, name = path.rpartition("/")
    stem = name[:-len(".json")]
    return (topic, int(stem) if stem.isdigit() else stem)


def cases_from(files: dict[str, bytes]) -> dict[str, list[str]]:
    """{"<topic>/<n>": lines} of the CPsyCounE/<topic>/<n>.json files, in topic and case order."""
    cases = {}
    for path in sorted(files, key=case_key):
        value = json.loads(files[path].decode("utf-8"))
        if not isinstance(value, list):
            raise ValueError(f"{path} is not a JSON list of lines")
        cases[path[: -len(".json")]] = value
    return cases


def archive_files(data: bytes) -> dict[str, bytes]:
    """The CPsyCounE/<topic>/<n>.json files of a codeload zip (its top folder stripped)."""
    found = {}
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        for name in archive.namelist():
            parts = name.split("/")
            if len(parts) == 4 and parts[1] == "CPsyCounE" and parts[3].endswith(".json"):
                found[f"{parts[2]}/{parts[3]}"] = archive.read(name)
    return found


def local_files(folder: Path) -> dict[str, bytes]:
    return {f"{p.parent.name}/{p.name}": p.read_bytes() for p in sorted(folder.glob("*/*.json"))}


def download(repo: str, revision: str) -> bytes:
    import requests

    response = requests.get(f"https://codeload.github.com/{repo}/zip/{revision}", timeout=120)
    response.raise_for_status()
    return response.content


def write(out: Path, rows: list[dict], turns: list[str], source: dict) -> None:
    write_folder_atomic(out, {f"{SUBSET}.jsonl": "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows),
                              TURNS_FILE: json.dumps(turns, ensure_ascii=False) + "\n",
                              "SOURCE.json": json.dumps(source, ensure_ascii=False, indent=1) + "\n"})


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--repo", default=REPO)
    parser.add_argument("--revision", default=REVISION)
    parser.add_argument("--local", default=None, help="a checkout's CPsyCounE folder instead of the download")
    args = parser.parse_args(argv)
    try:
        files = local_files(Path(args.local)) if args.local else archive_files(download(args.repo, args.revision))
        cases = cases_from(files)
        rows, turns = [], []
        for case, lines in cases.items():
            for row in client_turn_rows(case_messages(lines)):
                rows.append(row)
                turns.append(case)
    except ValueError as error:
        print(f"[fetch] error: CPsyCounE of {args.repo}: {error}", file=sys.stderr)
        print("[fetch] fix: check the cases' layout against scripts/py/fetch_cpsycoune.py", file=sys.stderr)
        return 1
    except Exception as error:  # noqa: BLE001 - the network, GitHub, a broken archive: one message
        print(f"[fetch] error: could not get {args.repo} at {args.revision}: {error}", file=sys.stderr)
        print("[fetch] fix: check the network to GitHub (make preflight checks it), or pass --local with a "
              "checkout's CPsyCounE folder", file=sys.stderr)
        return 1
    if not rows:
        print(f"[fetch] error: no CPsyCounE case in {args.local or args.repo}", file=sys.stderr)
        print("[fetch] fix: point --local at the CPsyCounE folder (<topic>/<n>.json)", file=sys.stderr)
        return 1
    source = {"repo": args.repo, "revision": None if args.local else args.revision, "cases": len(cases),
              "turns": len(rows), "licence": LICENCE}
    write(Path(args.out), rows, turns, source)
    print(f"[fetch] {len(rows)} client turns of {len(cases)} CPsyCounE cases -> {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
