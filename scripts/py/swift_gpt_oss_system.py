"""ms-swift 4.6 plugin: make the gpt_oss template honour `--system` and a request's reasoning effort.

GptTemplate._swift_prepare_inputs replaces a missing per-row system message with a
harmony system block holding *today's date* before ms-swift applies `--system`
(template_meta.default_system), so `--system` is silently ignored for gpt-oss and the
tokenised training data, the served prompt and therefore losses and evaluation
answers change from one day to the next. This applies `--system` first, as every
other template does. Without `--system` nothing changes.

A request's `chat_template_kwargs: {"reasoning_effort": "low"|"medium"|"high"}` (as in
the gpt-oss chat template of transformers) sets the `Reasoning:` line of the harmony
system block, so an evaluation states the effort it asks for (eval.yaml's answer_mode;
`response_prefix`, the other answer mode, is ms-swift's own per-request setting).

Loaded by ms-swift itself: `external_plugins: scripts/py/swift_gpt_oss_system.py` in
configs/<exp>/sft.yaml and deploy.yaml.
"""

import re

from swift.template.templates.llm import GptTemplate

_prepare_inputs_with_date = GptTemplate._swift_prepare_inputs
_REASONING_LINE = re.compile(r"^Reasoning: \w+$", re.MULTILINE)
REASONING_EFFORTS = ("low", "medium", "high")


def with_reasoning_effort(system: str, effort: str) -> str:
    """The harmony system block with its `Reasoning:` line set to effort."""
    if effort not in REASONING_EFFORTS:
        raise ValueError(f"reasoning_effort {effort!r}: use one of {', '.join(REASONING_EFFORTS)}")
    if not _REASONING_LINE.search(system):
        raise ValueError("reasoning_effort: the harmony system block has no 'Reasoning:' line to set")
    return _REASONING_LINE.sub(f"Reasoning: {effort}", system, count=1)


def _prepare_inputs_with_configured_system(self, inputs):
    if inputs.system is None and self.template_meta.default_system is not None:
        inputs.system = self.template_meta.default_system
    _prepare_inputs_with_date(self, inputs)
    effort = (inputs.chat_template_kwargs or {}).get("reasoning_effort")
    if effort is not None and inputs.system is not None:
        inputs.system = with_reasoning_effort(inputs.system, effort)


GptTemplate._swift_prepare_inputs = _prepare_inputs_with_configured_system
