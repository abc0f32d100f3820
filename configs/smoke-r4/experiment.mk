# generated from configs/smoke/experiment.mk and configs/smoke-r4/variant.yaml by make variants; edit variant.yaml
# The prerequisites of smoke-r4 are its base's (make includes this file when EXP=smoke-r4).
include configs/smoke/experiment.mk
