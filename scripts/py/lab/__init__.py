"""Shared modules of the repo's Python programs (scripts/py/*.py).

A program under scripts/py runs with scripts/py on sys.path, so `from lab.files import
write_atomic` works from any of them without installing anything; the modules of lab import
the programs' own helper modules (runparse, paired, fingerprint, eval_suite, mdhtml) the same
way.

- lab.files: atomic writes, hashes, paths shown relative to the checkout.
- lab.configs: ms-swift's model and dataset entries as ms-swift reads them, the hubs' caches.
- lab.report: the experiment report as modules: facts (what the run's files say),
  evaluations (each benchmark's results and tests), charts (PNGs) and render (Jinja2
  templates, HTML). scripts/py/report.py is the command; compare.py, table.py and pilot.py use
  the same modules.
"""
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[3]
