"""Run EvalScope as the pipeline needs it: keys never in argv, only gpt-oss's final channel scored.

  python evalscope_lab.py [--replies harmony] eval|perf EVALSCOPE_ARGS...

Keys: EvalScope 1.14 reads the served model's key from EVALSCOPE_API_KEY for `eval`,
but `evalscope perf` takes it only as --api-key, and the judge models of `--judge` only
as an `api_key` inside that JSON: both would show in the process list. SERVE_API_KEY
(perf) and JUDGE_API_KEY (each judge model) are taken from the environment and added
to the arguments in this process.

--replies harmony: the evaluated model (`--model`) answers in gpt-oss's harmony format.
Each of its replies is split where EvalScope turns a server's reply into a message
(OpenAICompatibleAPI.chat_choices_from_completion, its hook for this): the analysis
becomes a reasoning part, the final channel the message's text (scripts/py/harmony.py).
EvalScope scores, compares and hands to the judge only a message's text, so every kind
of benchmark (multiple choice, BLEU/ROUGE, the judge) sees the final channel alone; a
reply without one is empty: no answer. The whole reply is kept in the message's
metadata (`harmony`), which scripts/py/eval_result.py counts. A reply whose reasoning
came in a separate field (a server with a reasoning parser) is split by EvalScope
itself. Other models (a judge) are split only when their reply has harmony markup.

general_arena (make arena): EvalScope 1.14.1 names the arena's metrics `win_rate:identity`, and
its leaderboard hook (GeneralArenaAdapter._on_generate_report_end, which writes leaderboard.txt)
looks them up as `win_rate`: a KeyError after every pair was judged, and no report. Here the
leaderboard is skipped with a warning when it fails; the report (win_rate with its bounds) is
written as EvalScope builds it.

EVALSCOPE_HTML=0 in the environment (the env file's key, set in env/smoke.env): EvalScope's own
page of the run (reports/report.html, plotly charts) is not written. Nothing of ours reads it,
and on 2 CPU cores it costs about 0.5 CPU-seconds an evaluation, half of a small one's.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harmony import FINAL_PREFIX, parse_reply  # noqa: E402


def with_keys(argv: list[str], serve_key: str, judge_key: str) -> list[str]:
    argv = list(argv)
    if serve_key and argv[:1] == ["perf"]:
        argv += ["--api-key", serve_key]
    if judge_key and "--judge" in argv:
        index = argv.index("--judge") + 1
        judge = json.loads(argv[index])
        for model in judge.get("models") or []:
            model["api_key"] = judge_key
        argv[index] = json.dumps(judge, ensure_ascii=False)
    return argv


def flag_value(argv: list[str], flag: str) -> str | None:
    return argv[argv.index(flag) + 1] if flag in argv[:-1] else None


def prefills_final(argv: list[str]) -> bool:
    """The generation config asks the server to start the reply in the final channel."""
    config = json.loads(flag_value(argv, "--generation-config") or "{}")
    kwargs = (config.get("extra_body") or {}).get("chat_template_kwargs") or {}
    return kwargs.get("response_prefix") == FINAL_PREFIX


def split_message(message, prefilled: bool, strict: bool) -> None:
    """Makes a harmony reply's final channel the message's text, its analysis a reasoning part."""
    from evalscope.api.messages import ContentReasoning, ContentText

    if not isinstance(message.content, str):
        # EvalScope split a reasoning field out already: the content is the answer.
        reasoning = "\n".join(c.reasoning for c in message.content if c.type == "reasoning")
        message.metadata = {**(message.metadata or {}), "harmony": {
            "form": "field", "final": message.text or None, "analysis": reasoning}}
        return
    raw = message.content
    reply = parse_reply(raw, prefilled)
    if reply.form == "plain" and not strict:
        return  # not a harmony reply (a judge that is not gpt-oss)
    message.content = [ContentReasoning(reasoning=reply.analysis), ContentText(text=reply.final or "")]
    message.metadata = {**(message.metadata or {}), "harmony": {
        "form": reply.form, "final": reply.final, "analysis": reply.analysis, "raw": raw}}


def install_harmony_replies(model: str, prefilled: bool) -> None:
    from evalscope.api.registry import MODEL_APIS
    from evalscope.models.openai_compatible import OpenAICompatibleAPI

    class HarmonyRepliesAPI(OpenAICompatibleAPI):
        def chat_choices_from_completion(self, completion, tools):
            choices = super().chat_choices_from_completion(completion, tools)
            for choice in choices:
                split_message(choice.message, prefilled, strict=self.model_name == model)
            return choices

    MODEL_APIS["openai_api"] = HarmonyRepliesAPI


def skip_html_report() -> None:
    import evalscope.report

    # evaluate_model imports it from evalscope.report when it runs, so this replaces it there.
    evalscope.report.gen_html_report_file = lambda reports_dir: "(not written: EVALSCOPE_HTML=0)"


def tolerate_arena_leaderboard() -> None:
    from evalscope.benchmarks.general_arena.general_arena_adapter import GeneralArenaAdapter

    write_leaderboard = GeneralArenaAdapter._on_generate_report_end

    def leaderboard_or_warning(self, report, output_dir, **kwargs):
        try:
            write_leaderboard(self, report, output_dir, **kwargs)
        except KeyError as error:
            print(f"evalscope_lab.py: general_arena's leaderboard.txt not written (EvalScope 1.14.1 looks up "
                  f"{error} among metrics named *:identity); the report is complete", file=sys.stderr)

    GeneralArenaAdapter._on_generate_report_end = leaderboard_or_warning


def main() -> int:
    argv = sys.argv[1:]
    replies = "plain"
    if argv[:1] == ["--replies"]:
        replies, argv = argv[1], argv[2:]
    if replies not in ("plain", "harmony"):
        print(f"evalscope_lab.py: --replies {replies}: use harmony or plain", file=sys.stderr)
        return 2
    argv = with_keys(argv, os.environ.pop("SERVE_API_KEY", ""), os.environ.pop("JUDGE_API_KEY", ""))
    if replies == "harmony" and argv[:1] == ["eval"]:
        install_harmony_replies(flag_value(argv, "--model") or "", prefills_final(argv))
    if argv[:1] == ["eval"] and "general_arena" in (flag_value(argv, "--datasets") or ""):
        tolerate_arena_leaderboard()
    if os.environ.get("EVALSCOPE_HTML") == "0":
        skip_html_report()
    from evalscope.cli.cli import run_cmd

    sys.argv = ["evalscope", *argv]
    return run_cmd()


if __name__ == "__main__":
    sys.exit(main())
