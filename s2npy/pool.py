"""Closed connections kept wiped for reuse by the next Connection on the same Config.

Why: ``s2n_connection_new`` + ``s2n_connection_free`` cost ~30 us per connection
here. s2n allocates a connection's handshake hashes, PRF space and crypto
parameters in page-aligned, ``mlock``ed memory and unlocks and frees them again.
``s2n_connection_wipe`` zeroes a connection for reuse and keeps those allocations
(~1 us on an unused connection). It is s2n's documented way to reuse a
connection, and ``s2n_connection_new`` itself ends with it, "to ensure wipe is
implemented correctly and safe". The Rust binding's connection pool does the same.

Each :class:`~s2npy.Config` keeps up to ``reuse_connections`` wiped connections
per mode (8 by default). A wiped connection holds ~44 KiB of s2n's locked memory
(VmLck, measured): its hashes, PRF space, crypto parameters and a handshake buffer
of one full record. Nothing of the previous connection survives a wipe: keys are zeroed
and the connection context, callbacks, server name, overrides and I/O are cleared.
``Config.close()`` frees them, and so does the Config's garbage collection, before
the s2n config they point to.
"""

from __future__ import annotations

from typing import Any

from . import _datapath
from ._native import address, lib


class IdleConnections:
    """Wiped ``s2n_connection``s of one config, by mode, at most ``capacity`` per mode.

    Each is kept as ``(pointer, address)``: the cffi pointer and its address as an int, so that
    ConnectionCore's set-up (C) reuses both without a cffi call.
    """

    def __init__(self, config_ptr: Any, capacity: int) -> None:
        self._idle: tuple[list, list] = ([], [])  # indexed by s2n_mode: S2N_SERVER = 0, S2N_CLIENT = 1
        self._closed = False
        if not isinstance(capacity, int) or isinstance(capacity, bool) or capacity < 0:
            from .errors import UsageError

            raise UsageError("creating a config", message=f"reuse_connections must be an int >= 0, not {capacity!r}",
                             hint="0 turns connection reuse off")
        self.capacity = capacity
        # Held so that the s2n config outlives the connections that point at it, even when
        # the Config is garbage collected (its pointer is freed only after this object).
        self._config_ptr = config_ptr

    def take(self, mode: int) -> tuple[Any, int] | None:
        """A wiped connection of ``mode`` to set up instead of a new one, ``(pointer, address)``, or None."""
        try:
            return self._idle[mode].pop()  # atomic: each connection goes to one taker
        except IndexError:
            return None

    def give(self, pointer: Any, mode: int) -> None:
        """Take back a closed connection: wipe and keep it, or free it (full, closed, or wipe failed).

        In C (``_datapath.give_back``, which ConnectionCore's ``close()`` calls too): the GIL is
        released around the wipe and the free, and the pool is checked again after the wipe,
        where a ``clear()`` may have run, so that no lock is needed.
        """
        _datapath.give_back(self, pointer, address(pointer), mode)

    def __len__(self) -> int:
        return len(self._idle[0]) + len(self._idle[1])

    def clear(self) -> None:
        """Free every kept connection; later ones are freed at once (the config is closing)."""
        self._closed = True  # give_back checks it after each wipe: nothing is kept from here on
        for idle in self._idle:
            while idle:
                lib.s2n_connection_free(idle.pop()[0])

    def __del__(self) -> None:
        self.clear()
