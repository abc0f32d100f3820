# generated from configs/smoke/experiment.mk and configs/smoke-experts/variant.yaml by make variants; edit variant.yaml
# The prerequisites of smoke-experts are its base's (make includes this file when EXP=smoke-experts).
include configs/smoke/experiment.mk
