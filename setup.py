"""The optional C extension of the matcher's per-message scan (monitor/rules/_scan.c); the rest
of the project's metadata is in pyproject.toml. Without a C compiler the build skips it and the
matcher takes the same steps in Python (monitor/rules/scan.py)."""

from setuptools import Extension, setup

setup(ext_modules=[Extension("monitor.rules._scan", ["monitor/rules/_scan.c"], optional=True)])
