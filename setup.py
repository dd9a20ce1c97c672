"""setuptools needs setup() for cffi_modules; all metadata lives in pyproject.toml.

Two extension modules, both on Python's limited API (abi3): ``s2npy._s2n``
(cffi, made by build_s2n.py: libs2n and the C helpers) and ``s2npy._datapath``
(Python's C API: send/recv_into per call, see its source; it links nothing,
s2n's functions reach it from the cffi module at import).
"""

import sys
from pathlib import Path

from setuptools import Extension, setup

sys.path.insert(0, str(Path(__file__).resolve().parent))  # pip's isolated build may not have it
from build_s2n import sanitize_flags  # noqa: E402

DATAPATH = Extension("s2npy._datapath", ["s2npy/_datapath.c", "s2npy/_connection_core.c"], py_limited_api=True,
                     depends=["s2npy/_datapath.h"],
                     extra_compile_args=["-O2", "-fvisibility=hidden", *sanitize_flags()],
                     extra_link_args=sanitize_flags())

setup(cffi_modules=["build_s2n.py:make_ffi"], ext_modules=[DATAPATH])
