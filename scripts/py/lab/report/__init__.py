"""The experiment report (make report) as modules: facts, evaluations, charts, render.
scripts/py/report.py is its command; see lab/__init__.py."""
