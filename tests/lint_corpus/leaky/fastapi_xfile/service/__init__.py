# ruff: noqa
# Pattern: see main.py.
