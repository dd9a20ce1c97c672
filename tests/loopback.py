"""Loopback helpers for tests that talk to real peers over 127.0.0.1 (importable from every test)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager


def free_port() -> int:
    """A TCP port that was free a moment ago on 127.0.0.1."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def accepted_peer(client: Callable[[int], object], timeout: float = 10) -> Iterator[socket.socket]:
    """Run ``client(port)`` in a thread against a loopback listener; yield the accepted socket.

    The socket (with ``timeout``) is closed and the client thread joined afterwards.
    """
    with socket.create_server(("127.0.0.1", 0)) as listener:
        peer = threading.Thread(target=client, args=(listener.getsockname()[1],))
        peer.start()
        sock, _ = listener.accept()
        sock.settimeout(timeout)
        try:
            yield sock
        finally:
            sock.close()
            peer.join(timeout)
