"""The compiled cffi module, initialised once per process.

Everything that talks to libs2n imports ``ffi`` and ``lib`` from here, so that
``s2n_init()`` has run before the first call. ``s2n_init`` is process-wide and
must run once; s2n itself handles ``fork()`` (it reseeds its randomness in the
child), so no re-initialisation is needed after a fork.
"""

from __future__ import annotations

import json
import threading

from ._s2n import ffi, lib

_init_lock = threading.Lock()
_initialised = False


def ensure_init() -> None:
    """Run ``s2n_init()`` exactly once per process (thread-safe)."""
    global _initialised
    if _initialised:
        return
    with _init_lock:
        if _initialised:
            return
        if lib.s2n_init() != lib.S2N_SUCCESS:
            from .errors import capture_error

            raise capture_error("initialising s2n-tls (s2n_init)")
        _initialised = True


def c_string(pointer) -> str | None:
    """Copy a C string owned by s2n into a Python str (None for NULL)."""
    if pointer == ffi.NULL:
        return None
    return ffi.string(pointer).decode("utf-8", "replace")


def build_info() -> dict:
    """What build_s2n.py linked: source pin, libcrypto flavour, optional features."""
    return json.loads(ffi.string(lib.s2npy_build_info()).decode())


BUILD_INFO = build_info()
HAS_EVENTS: bool = BUILD_INFO["features"].get("events", False)
HAS_FINGERPRINT: bool = BUILD_INFO["features"].get("fingerprint", False)

ensure_init()


_UINTPTR = ffi.typeof("uintptr_t")


def address(pointer) -> int:
    """A cffi pointer as an int (0 for NULL): how ``s2npy._datapath`` (C API, no cffi) takes pointers."""
    return int(ffi.cast(_UINTPTR, pointer))
