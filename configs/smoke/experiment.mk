# Extra prerequisites of the smoke experiment, included by the Makefile when EXP=smoke:
# its base model is a tiny gpt-oss built locally instead of downloaded.
SMOKE_MODEL := build/tiny-gpt-oss
SMOKE_DATA := configs/smoke/data/mh-sharegpt-sample.jsonl
TRAIN_PREREQS += $(SMOKE_MODEL)/config.json
EVAL_BASE_PREREQS += $(SMOKE_MODEL)/config.json

# The command that builds the prerequisites (make runbook prints it too).
PREREQ_CMD := scripts/smoke/build-model.sh $(SMOKE_MODEL) $(SMOKE_DATA)
$(SMOKE_MODEL)/config.json: scripts/smoke/build_tiny_model.py $(SMOKE_DATA) | env
	$(PREREQ_CMD)
