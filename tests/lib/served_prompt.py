"""The prompts ms-swift 4.6's gpt_oss template (with this repo's plugin) builds for requests:
tests/lib/served_prompt.py MODEL_DIR SYSTEM_FILE CHAT_TEMPLATE_KWARGS_JSON...
prints a JSON list of the decoded prompts, one per CHAT_TEMPLATE_KWARGS_JSON, as `swift deploy`
encodes them before generating (one process: importing ms-swift takes about 10 s)."""
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts" / "py"))

from swift.infer_engine import InferRequest  # noqa: E402
from swift.model import get_model_processor  # noqa: E402
from swift.template import get_template  # noqa: E402

import swift_gpt_oss_system  # noqa: E402,F401  (the served deploy.yaml loads it as an external plugin)

_, processor = get_model_processor(sys.argv[1], load_model=False, download_model=False)
template = get_template(processor, default_system=Path(sys.argv[2]).read_text(encoding="utf-8"), template_type="gpt_oss")
prompts = []
for kwargs in sys.argv[3:]:
    request = InferRequest(messages=[{"role": "user", "content": "你好"}], chat_template_kwargs=json.loads(kwargs))
    prompts.append(processor.decode(template.encode(request)["input_ids"]))
print(json.dumps(prompts, ensure_ascii=False))
