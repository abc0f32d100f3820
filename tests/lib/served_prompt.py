"""The prompt ms-swift 4.6's gpt_oss template (with this repo's plugin) builds for one
request: tests/lib/served_prompt.py MODEL_DIR SYSTEM_FILE CHAT_TEMPLATE_KWARGS_JSON
prints the decoded prompt, as `swift deploy` encodes it before generating."""
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
request = InferRequest(messages=[{"role": "user", "content": "你好"}], chat_template_kwargs=json.loads(sys.argv[3]))
print(processor.decode(template.encode(request)["input_ids"]))
