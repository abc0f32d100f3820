"""ms-swift 4.6 plugin: only numbers reach SwanLab.

ms-swift adds its progress strings ('9/16', '3s', '1m 6s') to the logs of every step and
evaluation (swift/trainers/patcher.py, add_train_message); SwanLab's transformers
callback passes them on, and SwanLab prints an ERROR for each ("Unsupported scalar
string"). This drops string values on their way to SwanLab; logging.jsonl keeps them.

Loaded by ms-swift itself: `external_plugins: scripts/py/swift_swanlab_numeric.py` in
configs/<exp>/sft.yaml.
"""

from swanlab.integration.transformers import SwanLabCallback

_log_everything = SwanLabCallback._log


def _log_numbers(self, payload, step):
    numbers = {key: value for key, value in payload.items() if not isinstance(value, str)}
    if numbers:
        _log_everything(self, numbers, step)


SwanLabCallback._log = _log_numbers
