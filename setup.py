"""setuptools needs setup() for cffi_modules; all metadata lives in pyproject.toml."""

from setuptools import setup

setup(cffi_modules=["build_s2n.py:make_ffi"])
