"""Shared modules of the repo's Python programs (scripts/py/*.py).

A program under scripts/py runs with scripts/py on sys.path, so `from lab.files import
write_atomic` works from any of them without installing anything.
"""
