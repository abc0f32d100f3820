"""ms-swift 4.6 plugin: make the gpt_oss template honour `--system`.

GptTemplate._swift_prepare_inputs replaces a missing per-row system message with a
harmony system block holding *today's date* before ms-swift applies `--system`
(template_meta.default_system), so `--system` is silently ignored for gpt-oss and the
tokenised training data, the served prompt and therefore losses and evaluation
answers change from one day to the next. This applies `--system` first, as every
other template does. Without `--system` nothing changes.

Loaded by ms-swift itself: `external_plugins: scripts/py/swift_gpt_oss_system.py` in
configs/<exp>/sft.yaml and deploy.yaml.
"""

from swift.template.templates.llm import GptTemplate

_prepare_inputs_with_date = GptTemplate._swift_prepare_inputs


def _prepare_inputs_with_configured_system(self, inputs):
    if inputs.system is None and self.template_meta.default_system is not None:
        inputs.system = self.template_meta.default_system
    _prepare_inputs_with_date(self, inputs)


GptTemplate._swift_prepare_inputs = _prepare_inputs_with_configured_system
