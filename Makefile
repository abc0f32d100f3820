# Reproducible LoRA SFT of gpt-oss-20b: train -> export -> deploy -> health -> eval -> report.
# `make help` lists the targets. Settings come from the env file (env/local.env,
# or ENV_FILE=...); variables on the command line win: make all GPU=6
SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help
.DELETE_ON_ERROR:
MAKEFLAGS += --no-builtin-rules --no-print-directory

EXP ?= gpt-oss-20b-sft-v1
# A pilot (make pilot, PILOT=1): EXP=<exp>-pilot runs configs/<exp> at a small scale under
# its own name, so its folders, stamps and fingerprints are never the full run's
# (scripts/lib/env.sh's resolve_pilot holds the same rule for the scripts).
is_pilot_name = $(and $(filter %-pilot,$(1)),$(if $(wildcard configs/$(1)/sft.yaml),,$(wildcard configs/$(patsubst %-pilot,%,$(1))/sft.yaml)))
ifeq ($(PILOT),1)
ifeq ($(call is_pilot_name,$(EXP)),)
ifneq ($(wildcard configs/$(EXP)/sft.yaml),)
override EXP := $(EXP)-pilot
endif
endif
endif
export EXP
PILOT_OF := $(if $(call is_pilot_name,$(EXP)),$(patsubst %-pilot,%,$(EXP)))
CONFIG_DIR := configs/$(or $(PILOT_OF),$(EXP))
STATE := .state/$(EXP)
# The steps, their order and what each builds on: scripts/pipeline.mk, the one declaration
# (the scripts read it too). A step's stamp, and its prerequisites as declared there: the
# stamps of the steps it needs, the experiment's configs it reads, the suite.
include scripts/pipeline.mk
step_stamp = $(STATE)/$(1).done
step_prereqs = $(foreach need,$(needs.$(1)),$(call step_stamp,$(need))) $(addprefix $(CONFIG_DIR)/,$(configs.$(1))) \
	$(if $(suite.$(1)),$(BENCH_SUITE))
# The stamps of STEPS in pipeline order; a dry run shows serving once, before the first evaluation.
pipeline_stamps = $(foreach step,$(filter $(1),$(PIPELINE)),$(if $(and $(filter 1,$(DRY_RUN)),$(filter evals,$(step))),serve) \
	$(call step_stamp,$(step)))
# The evaluation groups: the `group` of each benchmark of the suite configs/benchmarks.yaml,
# each a target: make eval-<group>. A group eval.yaml gives no benchmark has nothing to do.
# (Read with awk: make parses this before the venv exists.)
BENCH_SUITE := configs/benchmarks.yaml
# The arena's group is no evaluation of one model but the pipeline step arena (make arena).
EVAL_GROUPS := $(filter-out arena,$(shell awk '/^  group: / && !seen[$$2]++ {print $$2}' $(BENCH_SUITE)))
EVAL_STAMPS := $(EVAL_GROUPS:%=$(STATE)/eval-%.done)
# The fine-tuned model's whole evaluation, as one step of `make all` (see its rule).
EVALS_STAMP := $(call step_stamp,evals)
TRAIN_PREREQS :=
EVAL_BASE_PREREQS :=
PREREQ_CMD :=
# Only a plain name selects a config folder; every script refuses other names clearly.
ifeq ($(EXP),$(lastword $(subst /, ,$(EXP))))
ifneq ($(EXP),..)
-include $(CONFIG_DIR)/experiment.mk
endif
endif

# The top-level make's pid: its sub-makes (make all, make smoke) share its run lock.
ifndef LAB_RUN_OWNER
LAB_RUN_OWNER := $(shell echo $$PPID)
endif
export LAB_RUN_OWNER

# Before any step, scripts/sync-state.sh takes the experiment's run lock (one make at
# a time) and removes every stamp whose outputs were not made from the current inputs
# (configs, dataset, model, lock, upstream outputs: scripts/lib/fingerprint.sh), so
# make redoes exactly the steps whose inputs changed.
STEP_GOALS := train export deploy deploy-base serve $(EVAL_GROUPS:%=eval-%) evals eval-base arena report all experiment \
	experiment-with-base
# Make 4.3's $(shell) does not see command-line variables: the settings are passed
# along (never a secret: the sync needs none).
SYNC_VARS := EXP ENV_FILE GPU SWANLAB_PROJECT SERVE_HOST SERVE_PORT MODEL DATASET OUTPUT_ROOT EXPORT_ROOT \
	RESULTS_ROOT CACHE_ROOT OFFLINE MASTER_PORT CHECKPOINT LAB_STATE_DIR REPORT_DIR REPLACE_CHANGED \
	NNODES NODE_RANK MASTER_ADDR DEEPSPEED JUDGE_API_URL JUDGE_MODEL
sync_env = $(foreach v,$(SYNC_VARS),$(if $(filter command line override,$(origin $(v))),$(v)='$(subst ','\'',$($(v)))'))
# A name that is no experiment stops here with the experiment's message, in every mode
# (a dry run's sync is silent, and make would only say "No rule to make target").
ifneq ($(filter $(STEP_GOALS),$(MAKECMDGOALS)),)
ifneq ($(shell scripts/check-exp.sh '$(subst ','\'',$(EXP))' >&2; echo $$?),0)
$(error stopped before any step; see above)
endif
endif
# `make all` is `make experiment` under a trap: its sub-make syncs, once.
SYNC_GOALS := $(filter-out all,$(filter $(STEP_GOALS),$(MAKECMDGOALS)))
ifneq ($(SYNC_GOALS),)
ifneq ($(DRY_RUN),1)
SYNC_STATUS := $(shell LAB_RUN_OWNER=$(LAB_RUN_OWNER) $(sync_env) scripts/sync-state.sh $(SYNC_GOALS) >&2; echo $$?)
ifneq ($(SYNC_STATUS),0)
$(error stopped before any step; see above)
endif
else
# A dry run changes nothing: the stamps that do not hold are treated as not done
# (all of them when the fingerprints cannot be computed, e.g. before make env).
STALE_STAMPS := $(shell $(sync_env) DRY_RUN=1 scripts/sync-state.sh 2>/dev/null || echo ALL)
endif
endif

# A step's stamp is written only after its script succeeded, so an interrupted
# step is redone. DRY_RUN=1 prints the commands of the steps that are not done
# (like make -n) and marks nothing done.
ifeq ($(DRY_RUN),1)
.SILENT:
mark_done = true
# `make all`'s runbook shows deploy and health once, before the evaluations.
ensure_served = $(if $(filter all experiment experiment-with-base,$(MAKECMDGOALS)),true,scripts/deploy.sh && scripts/health.sh)
ALL_STAMPS := $(foreach step,$(filter-out report,$(PIPELINE)),$(call step_stamp,$(step))) $(EVAL_STAMPS)
.PHONY: $(if $(filter ALL,$(STALE_STAMPS)),$(ALL_STAMPS),$(filter $(ALL_STAMPS),$(STALE_STAMPS)))
else
# $(call mark_done,FILE...) also marks the FILEs done (make evals: the groups it finished).
mark_done = @mkdir -p $(@D) && touch $@ $(1)
ensure_served = scripts/deploy.sh && scripts/health.sh
endif
# Steps share one server and one port: never run two at once, even under -j.
.NOTPARALLEL:

.PHONY: help env preflight train export deploy deploy-base health serve experiment experiment-with-base stop $(EVAL_GROUPS:%=eval-%) eval-GROUP evals eval-base arena eval-app dashboard \
	report status all smoke pilot test lint clean runbook sbatch new-exp new-grid variants sweep prereqs compare table \
	human-pack human-eval human-export human-import human-report

help: ## List the targets
	@printf 'Usage: make TARGET [EXP=name] [GPU=6|0,1,2,3|cpu] [ENV_FILE=env/local.env] [DRY_RUN=1]\n\n'
	@grep -hE '^[a-zA-Z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/^([a-zA-Z-]+):.*## (.*)/  \1\t\2/' | expand -t 16

env: ## Create the pinned venv(s) for this machine (cpu or gpu profile); a no-op when up to date
	scripts/setup-env.sh

# Built prerequisites first (the smoke model), as `make train` does: a model path that
# does not exist yet would be taken for a hub id.
preflight: $(TRAIN_PREREQS) ## Check in seconds what a run needs: env file, configs, dataset, SwanLab key, hub ids, GPU memory, disk, ports, venv
	scripts/preflight.sh

train: $(STATE)/train.done ## LoRA SFT with ms-swift (resumes an interrupted run); runs preflight first
$(STATE)/train.done: $(call step_prereqs,train) $(TRAIN_PREREQS) | env
	scripts/preflight.sh
	scripts/train.sh
	$(mark_done)

export: $(STATE)/export.done ## Merge the LoRA into the base model (CHECKPOINT=last|best|path)
$(STATE)/export.done: $(call step_prereqs,export)
	scripts/export.sh
	$(mark_done)

deploy: $(STATE)/export.done ## Serve the merged model in the background (no-op if already serving)
	scripts/deploy.sh

deploy-base: $(EVAL_BASE_PREREQS) | env ## Serve the base model, for the base-vs-fine-tuned comparison
	scripts/deploy.sh --base

health: ## Check the server lists the model and answers a chat completion
	scripts/health.sh

stop: ## Stop the experiment's server and its child processes (ALL=1: every experiment's)
	scripts/stop.sh

# Each evaluation makes sure the fine-tuned model is served and healthy first.
# `scripts/eval.sh --group cmmlu` runs the benchmarks of group cmmlu (cmmlu, cmmlu-psych).
# A static pattern rule: make skips implicit rules for .PHONY targets (DRY_RUN=1).
# make help lists them as eval-GROUP (the groups are those of configs/benchmarks.yaml).
$(EVAL_GROUPS:%=eval-%): eval-%: $(STATE)/eval-%.done
eval-GROUP: ## The benchmarks of one group of configs/benchmarks.yaml (ceval, cmmlu, psych, general, safety, dialog, ...) against the served model
	@echo "error: name a group: make eval-<group>, one of: $(EVAL_GROUPS)" >&2; echo "fix: e.g. make eval-ceval" >&2; exit 2
$(EVAL_STAMPS): $(STATE)/eval-%.done: $(call step_prereqs,evals)
	$(ensure_served)
	scripts/eval.sh --group $*
	$(mark_done)

# The whole experiment evaluates the fine-tuned model in one eval.sh, every benchmark of
# eval.yaml not yet finished, and logs them to SwanLab in one process, as the runbook and
# eval-base do (a process per group cost about 2 s each). Its stamp holds when every
# benchmark is finished, however it was run (make eval-<group> or this).
evals: $(EVALS_STAMP) ## Every benchmark of eval.yaml against the served fine-tuned model (what make all runs)
$(EVALS_STAMP): $(call step_prereqs,evals)
	$(ensure_served)
	scripts/eval.sh all
	$(call mark_done,$(EVAL_STAMPS))

# After training: the held-out conversations come from the run's split. Shared between
# experiments (scripts/lib/store.sh): what another experiment evaluated with the same inputs
# is linked; the base model is served (and stopped after) only when something is left.
eval-base: $(STATE)/eval-base.done ## The same benchmarks on the base model, served under its own name (shared between experiments)
$(STATE)/eval-base.done: $(call step_prereqs,eval-base) $(EVAL_BASE_PREREQS) | env
	scripts/eval.sh --base --serve all
	$(mark_done)

# Both models' replies to the same prompts, compared by the judge of the env file in both orders
# (the arena benchmark of eval.yaml; none: nothing to do). With JUDGE_MODEL=served it serves the
# fine-tuned model as the (placeholder) judge, and stops it after.
arena: $(STATE)/arena.done ## Base vs fine-tuned head to head: the judge compares both models' replies to the same prompts, both orders (win / tie / loss, win rate)
$(STATE)/arena.done: $(call step_prereqs,arena)
	scripts/arena.sh
	$(mark_done)

eval-app: ## EvalScope's result viewer on 127.0.0.1 over this repo's results
	scripts/eval-app.sh

dashboard: ## SwanLab's local dashboard on 127.0.0.1 over the experiment's local runs (offline)
	scripts/dashboard.sh

runbook: ## Print the whole experiment as one bash script: make runbook [EXP=] [GPU=] [ENV_FILE=] > runbook.sh
	@PREREQ_CMD='$(PREREQ_CMD)' scripts/runbook.sh

sbatch: ## Print a Slurm batch script of the experiment (EXPS="a b c": a job array, one task each): make sbatch [GPU=0,1,2,3] [NNODES=2] > job.sh; SUBMIT=1 submits it
	@scripts/sbatch.sh

report: ## Write report/$(EXP).md (Chinese) from the run's own files (a no-op when they did not change)
	scripts/report.sh

status: ## Progress of the current run: step, losses, time left, server
	scripts/status.sh

serve: $(STATE)/export.done
	scripts/deploy.sh
	scripts/health.sh

all: ## The whole experiment: train, export, deploy, health, evaluations, report
	@trap 'scripts/stop.sh; exit 130' INT TERM; $(MAKE) experiment

# The pipeline's steps in its order (prerequisites are built left to right: .NOTPARALLEL),
# then the report. `all` runs it with a trap: Ctrl-C leaves no server behind (it runs in
# its own session). make all leaves out the base model's evaluations and the arena, which
# needs them (make eval-base arena, make sweep WITH_BASE=1 and make smoke add them).
experiment: $(call pipeline_stamps,$(filter-out eval-base arena report,$(PIPELINE)))
	scripts/report.sh

experiment-with-base: $(call pipeline_stamps,$(filter-out report,$(PIPELINE)))
	scripts/report.sh

# The pilot: the whole experiment at a small scale under the name <exp>-pilot (its own
# folders, stamps and fingerprints), then report/<exp>-pilot.md, the full run's time
# projected from its measurements (make report of a pilot writes it). Stops its server.
pilot: ## A small-scale run of the experiment, then report/<exp>-pilot.md: the full run's time and GPU-hours projected from it
	@trap '$(MAKE) stop PILOT=1; exit 130' INT TERM; \
	status=0; $(MAKE) experiment PILOT=1 || status=$$?; \
	$(MAKE) stop PILOT=1; exit $$status

# Variants and comparisons (docs/variants.md): a variant is configs/<name>/variant.yaml plus the
# native configs generated from its base's; a sweep runs experiments one after another, or
# several at once (GPUS, JOBS), each with its own GPUs, ports, server and run lock.
new-exp: ## A variant of an experiment: make new-exp FROM=<exp> NAME=<name> SET="lora_rank=32 lora_alpha=128" [CONFIG=sft] [WHY=...]
	scripts/variants.sh new

new-grid: ## One variant per value of each axis: make new-grid FROM=<exp> GRID="lora_rank=4,8+lora_alpha=16,32 max_length=1024,2048"
	scripts/variants.sh grid

variants: ## Regenerate every variant's configs from its variant.yaml (after editing one, or its base)
	scripts/variants.sh generate

sweep: ## Each experiment's whole pipeline: make sweep EXPS="a b c" [GPUS="0 1 2,3"|JOBS=2] [KEEP_GOING=1] [WITH_BASE=1]
	MAKE='$(MAKE)' scripts/sweep.sh

# What experiments running side by side share, made once before they start (make sweep):
# the venv and the built prerequisites (the smoke's tiny model).
prereqs: $(TRAIN_PREREQS) $(EVAL_BASE_PREREQS) | env

compare: ## Experiments side by side in report/compare-<a>-<b>-....md (Chinese): make compare EXPS="a b c"
	scripts/compare.sh

table: ## The thesis's results table, report/table-<a>-<b>-....csv/.tex/.md: make table EXPS="a b c"
	scripts/table.sh

# The blind human evaluation of the counselling replies (docs/human-eval.md): a packet drawn from
# the replies the evaluations made, a rating page, the unblinded results in each report.
human-pack: ## Draw the blind human evaluation's packet from the evaluations' replies: make human-pack [EXPS="a b"] [N=120] [RATERS="r1 r2 r3"] [SEED=]
	scripts/human-eval.sh pack

human-eval: ## Serve the packet's rating page on HUMAN_EVAL_HOST:HUMAN_EVAL_PORT (the raters' links: links.txt beside the packet)
	scripts/human-eval.sh serve

human-export: ## Each rater's form of the packet as CSV and JSON, for raters who use a form
	scripts/human-eval.sh export

human-import: ## Filled forms back into the ratings, checked (one bad cell: nothing imported): make human-import FILES="a.csv b.json"
	scripts/human-eval.sh import

human-report: ## Unblind the ratings (means, safety, preference, agreement, judge vs humans), then make report of each experiment
	scripts/human-eval.sh report
	for exp in $(or $(EXPS),$(EXP)); do $(MAKE) report EXP=$$exp; done

smoke: ## The embedded default on CPU, offline: tiny gpt-oss, whole pipeline, base comparison; stops the server
	trap '$(MAKE) stop EXP=smoke ENV_FILE=env/smoke.env; exit 130' INT TERM; \
	status=0; $(MAKE) experiment-with-base EXP=smoke ENV_FILE=env/smoke.env || status=$$?; \
	$(MAKE) stop EXP=smoke ENV_FILE=env/smoke.env; exit $$status

lint: ## shellcheck every shell file
	shellcheck -x $$(git ls-files '*.sh' '*.bash' '*.bats' .ci/run)

test: ## shellcheck, bats, pytest, then the real CPU smoke pipeline
	tests/run.sh

# The smoke experiment's variants (configs/smoke-*, e.g. smoke-r4) and its pilots (smoke-pilot,
# smoke-r4-pilot) are smoke runs too.
clean: ## Remove step stamps, the outputs of the smoke run, its variants and pilots (smoke-*), their human-evaluation packets, the tiny model (never other experiments' outputs)
	@scripts/store.sh clean-smoke
	@$(if $(filter 1,$(DRY_RUN)),echo ,)rm -rf .state build output/smoke output/smoke.replaced-* export/smoke \
	  results/smoke results/smoke/*/*.replaced-* output/smoke-* export/smoke-* results/smoke-* \
	  report/smoke-pilot.md report/smoke-*-pilot.md results/human/smoke results/human/smoke-*
