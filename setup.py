"""The optional C extensions: the matcher's per-message scan (monitor/rules/_scan.c) and the
learned classifier's feature extraction (monitor/rules/_features.c); the rest of the project's
metadata is in pyproject.toml. Without a C compiler the build skips them and the same steps are
taken in Python (monitor/rules/scan.py, monitor/rules/classifier.py)."""

from setuptools import Extension, setup

setup(ext_modules=[
    Extension("monitor.rules._scan", ["monitor/rules/_scan.c"], optional=True),
    Extension("monitor.rules._features", ["monitor/rules/_features.c"], optional=True),
])
