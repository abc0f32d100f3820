"""CPsyExam's questions with published answers, from its public source, in the layout
EvalScope 1.14's general_mcq loads from a local_path.

  fetch_cpsyexam.py --type single|multi --out DIR [--split validation] [--repo ID] [--revision REV]

Downloads `cpsyexam.zip` of the Hugging Face dataset CAS-SIAT-XinHai/CPsyExam (the archive its
loader, cpsyexam.py, reads: `<split folder>/<task>.json`, a JSON list per task, each question
with `question`, `options` {A..E}, `answer`), takes the tasks of one question type
(`...-单项选择题` single, `...-多项选择题` multi) from the split whose answers are published
(validation: the `dev` folder; the test answers are held by the authors), and writes
  DIR/<task without its type suffix>_val.jsonl   {id, question, A..E, answer}
(multi: `answer` a list of letters, as general_mcq's multiple_correct needs) and
  DIR/SOURCE.json   repo, revision, file, split, type, questions per task, licence.
A question without an answer is an error naming the split (it is not the published one).
Written atomically (lab.files.write_folder_atomic: DIR.partial-<pid>, renamed; a DIR another process has just written is
kept). Needs the network once; HF_ENDPOINT / HF_TOKEN are the Hugging Face client's.
Licence: CC BY 4.0 on the dataset card, CC BY-NC-SA 4.0 in the loader: use the results under
the stricter (non-commercial, share-alike).
"""
from __future__ import annotations

import argparse
import io
import json
import sys
import zipfile
from pathlib import Path

from lab.files import write_folder_atomic

REPO_ID = "CAS-SIAT-XinHai/CPsyExam"
ARCHIVE = "cpsyexam.zip"
SPLIT_FOLDERS = {"validation": "dev", "train": "train", "test": "test"}
SUFFIXES = {"single": "-单项选择题", "multi": "-多项选择题"}
LETTERS = "ABCDEFGHIJ"


def rows_of(task: str, questions: list[dict], kind: str, split: str) -> list[dict]:
    """One general_mcq row per question; raises ValueError naming a question without an answer."""
    rows = []
    for index, item in enumerate(questions):
        options = item.get("options") or {k: item[k] for k in LETTERS if item.get(k)}
        answer = "".join(ch for ch in str(item.get("answer") or "").upper() if ch in LETTERS)
        if not answer:
            raise ValueError(f"{task}: question {index} of split {split} has no answer")
        row = {"id": item.get("id", index), "question": str(item["question"]).strip()}
        for letter in LETTERS:
            if options.get(letter):
                row[letter] = str(options[letter])
            else:
                break
        row["answer"] = sorted(set(answer)) if kind == "multi" else answer[:1]
        rows.append(row)
    return rows


def convert(archive: zipfile.ZipFile, kind: str, split: str) -> dict[str, list[dict]]:
    """{task: rows} of the question type in the split's folder of the archive."""
    folder, suffix, tasks = SPLIT_FOLDERS[split], SUFFIXES[kind], {}
    for name in sorted(archive.namelist()):
        path = Path(name)
        if path.suffix != ".json" or path.parent.name != folder or not path.stem.endswith(suffix):
            continue
        questions = json.loads(archive.read(name).decode("utf-8"))
        tasks[path.stem[: -len(suffix)]] = rows_of(path.stem, questions, kind, split)
    return tasks


def write(out: Path, tasks: dict[str, list[dict]], source: dict) -> None:
    files = {f"{task}_val.jsonl": "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows) for task, rows in tasks.items()}
    write_folder_atomic(out, {**files, "SOURCE.json": json.dumps(source, ensure_ascii=False, indent=1) + "\n"})


def download(repo: str, revision: str | None) -> tuple[bytes, str | None]:
    from huggingface_hub import HfApi, hf_hub_download

    sha = HfApi().dataset_info(repo, revision=revision).sha
    path = hf_hub_download(repo, ARCHIVE, repo_type="dataset", revision=sha or revision)
    return Path(path).read_bytes(), sha


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--type", choices=sorted(SUFFIXES), required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--split", choices=sorted(SPLIT_FOLDERS), default="validation")
    parser.add_argument("--repo", default=REPO_ID)
    parser.add_argument("--revision", default=None)
    parser.add_argument("--archive", default=None, help="a local copy of cpsyexam.zip instead of the download")
    args = parser.parse_args(argv)
    try:
        if args.archive:
            data, sha = Path(args.archive).read_bytes(), None
        else:
            data, sha = download(args.repo, args.revision)
        tasks = convert(zipfile.ZipFile(io.BytesIO(data)), args.type, args.split)
    except ValueError as error:
        print(f"[fetch] error: {error}", file=sys.stderr)
        print("[fetch] fix: use the split whose answers are published (--split validation)", file=sys.stderr)
        return 1
    except Exception as error:  # noqa: BLE001 - the network, the hub, a broken archive: one message
        print(f"[fetch] error: could not get {ARCHIVE} of {args.repo}: {error}", file=sys.stderr)
        print("[fetch] fix: check the network to Hugging Face (HF_ENDPOINT, HF_TOKEN; make preflight checks it), "
              "or pass --archive with a copy of cpsyexam.zip", file=sys.stderr)
        return 1
    if not tasks:
        print(f"[fetch] error: no {args.type} tasks in the {SPLIT_FOLDERS[args.split]}/ folder of {ARCHIVE}", file=sys.stderr)
        print("[fetch] fix: check the archive's layout against scripts/py/fetch_cpsyexam.py", file=sys.stderr)
        return 1
    source = {"repo": args.repo, "revision": sha, "file": ARCHIVE, "split": args.split, "type": args.type,
              "questions": {task: len(rows) for task, rows in tasks.items()},
              "licence": "CC BY 4.0 (dataset card); CC BY-NC-SA 4.0 (loader cpsyexam.py)"}
    write(Path(args.out), tasks, source)
    print(f"[fetch] {sum(source['questions'].values())} {args.type} questions of {len(tasks)} tasks -> {args.out}",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
