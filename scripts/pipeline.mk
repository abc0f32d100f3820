# The pipeline, declared once. The Makefile includes this file; scripts/lib/pipeline.sh reads
# it for the scripts (sync-state, make status, the runbook, the fingerprints), so the steps,
# their order and what each builds on are written here and nowhere else.
#
#   PIPELINE        the steps in the order a whole run takes them (make all, the runbook)
#   needs.STEP      the steps whose outputs STEP consumes: make rebuilds STEP after them,
#                   and its fingerprint holds their digests (a changed upstream redoes it)
#   configs.STEP    the experiment's native configs it reads (configs/<exp>/...)
#   suite.STEP      yes: it reads the benchmark suite (configs/benchmarks.yaml) too
#   title.STEP      what it does, as the runbook and make status say it
#
# Each step leaves .state/<exp>/STEP.done when its outputs were made from the current
# inputs, but those of UNSTAMPED (the report is a no-op when nothing changed). The evaluations are also split by
# the suite's groups (make eval-<group>, .state/<exp>/eval-<group>.done), each needing
# what evals needs. Keep it plain `NAME := words` lines: bash reads it without make.

PIPELINE := train export evals eval-base arena report
UNSTAMPED := report

needs.train :=
configs.train := sft.yaml
title.train := train: LoRA SFT with ms-swift

needs.export := train
configs.export := export.yaml
title.export := export: merge the LoRA of the chosen checkpoint

needs.evals := export
configs.evals := eval.yaml
suite.evals := yes
title.evals := evals: serve the fine-tuned model, check it, run every benchmark, stop it

needs.eval-base := train
configs.eval-base := eval.yaml
suite.eval-base := yes
title.eval-base := eval-base: the same benchmarks on the base model, served under its own name

needs.arena := evals eval-base
configs.arena := eval.yaml
suite.arena := yes
title.arena := arena: base vs fine-tuned, each prompt's two replies judged in both orders (the judge of the env file)

needs.report := evals eval-base arena
configs.report :=
title.report := report: report/<exp>.md from the run's own files
