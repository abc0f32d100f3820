"""Run `swift deploy` with an API key that never appears in argv or in the log.

`swift deploy --api_key K` puts K in the process list (the `swift` wrapper re-runs the
server as `python deploy.py ... --api_key K`) and in the log (ms-swift logs all its
arguments). This launcher takes the same arguments as `swift deploy` (a config file
first, then flags), reads the key from the environment variable SERVE_API_KEY, runs
the server in this process and masks the key in every log record.

Usage: SERVE_API_KEY=... python serve_with_api_key.py CONFIG.yaml [--flag value ...]
"""

import logging
import os
import sys


class MaskSecret(logging.Filter):
    def __init__(self, secret):
        super().__init__()
        self.secret = secret

    def filter(self, record):
        message = record.getMessage()
        if self.secret in message:
            record.msg, record.args = message.replace(self.secret, "***"), None
        return True


def main():
    key = os.environ.pop("SERVE_API_KEY", "")
    if not key:
        sys.exit("serve_with_api_key.py: SERVE_API_KEY is empty; use plain `swift deploy` without a key")
    from swift.cli.main import parse_yaml_args
    from swift.utils import get_logger

    get_logger().addFilter(MaskSecret(key))
    argv = sys.argv[1:]
    parse_yaml_args(argv)  # expands the config file into flags, as `swift deploy` does
    sys.argv = [sys.argv[0], *argv, "--api_key", key]
    from swift.pipelines import deploy_main

    deploy_main()


if __name__ == "__main__":
    main()
