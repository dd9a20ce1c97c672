"""One benchmark measurement for a Python contestant (``s2npy`` or ``ssl``); prints JSON.

    python benchmarks/py_bench.py CONTESTANT WORKLOAD key=value...

The workloads and keys are those of ``native_bench.c`` (see there), plus
``trace=1`` (s2npy only: ``Connection(trace=True)``). ``reuse=0`` gives s2npy's
configs ``reuse_connections=0`` (``ssl`` has no connection reuse). Both contestants run
the same code through a small adapter, so the only difference is the library.
A socket handshake uses a fresh ``socketpair``: a server thread per pair
takes the server end from a queue, negotiates and acknowledges; the client
thread negotiates its end and waits for the acknowledgement.
"""

from __future__ import annotations

import argparse
import json
import queue
import resource
import socket
import ssl
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable

from bench_args import at_least, positive_seconds

PAGE_KIB = resource.getpagesize() // 1024


def rss_kib() -> int:
    """Resident set size of this process now, in KiB."""
    return int(Path("/proc/self/statm").read_text().split()[1]) * PAGE_KIB


class SteppedContestant:
    """A contestant's handshake in two steps, ``start`` (a connection on a socket, not yet
    negotiated) and ``negotiate``: ``server``/``client`` make both, handshake_phases.py times each."""

    def start(self, side: str, io: Any, prefer: str | None = None) -> Any:
        raise NotImplementedError

    @staticmethod
    def negotiate(connection: Any) -> None:
        raise NotImplementedError

    def server(self, io: Any, prefer: str | None = None) -> Any:
        """A server connection on ``io``, handshake done."""
        return self._negotiated("server", io, prefer)

    def client(self, io: Any, prefer: str | None = None) -> Any:
        """A client connection on ``io`` (resuming ``self.session`` if set), handshake done."""
        return self._negotiated("client", io, prefer)

    def prime_session(self) -> None:
        """Before resumed handshakes: a first one whose ticket later clients resume."""
        prime_session(self)

    def _negotiated(self, side: str, io: Any, prefer: str | None) -> Any:
        connection = self.start(side, io, prefer)
        self.negotiate(connection)
        return connection


class S2npyContestant(SteppedContestant):
    """s2npy: Config/Connection over the fd fast path (or custom I/O when traced/in memory)."""

    def __init__(self, opts: dict[str, str]) -> None:
        import s2npy

        self.s2npy = s2npy
        self.trace = opts.get("trace") == "1"
        tickets = opts.get("resume") == "1"
        reuse = {"reuse_connections": 0} if opts.get("reuse") == "0" else {}  # else Config's default
        self.server_config = s2npy.Config(certificates=[(read(opts["cert"]), read(opts["key"]))],
                                          policy=opts["policy"], session_tickets=tickets, **reuse)
        self.client_config = s2npy.Config(trust=read(opts["ca"]), system_trust=False, policy=opts["policy"],
                                          session_tickets=tickets, **reuse)
        self.session: bytes | None = None

    def start(self, side: str, io: Any, prefer: str | None = None) -> Any:
        if side == "server":
            return self.s2npy.Connection(self.server_config, "server", io=io, trace=self.trace, prefer=prefer)
        return self.s2npy.Connection(self.client_config, "client", io=io, server_name="localhost",
                                     trace=self.trace, session=self.session, prefer=prefer)

    @staticmethod
    def negotiate(connection: Any) -> None:
        connection.negotiate()

    def keep_session(self, client: Any) -> None:
        self.session = client.session

    @staticmethod
    def resumed(client: Any) -> bool:
        return client.facts().session_resumed

    @staticmethod
    def close(connection: Any, sock: socket.socket) -> None:
        connection.close()
        sock.close()

    def memory_worker(self) -> Callable[[], None]:
        """In-memory handshakes, both ends in the calling thread, over one pipe kept for the worker.

        The pipe is reused like ``native_bench``'s two buffers (and ``ssl``'s two BIOs): the
        row measures handshakes, not transports. A handshake leaves no bytes in it (no
        tickets are sent here); any would fail the next handshake, not pass unseen.
        """
        server_end, client_end = self.s2npy.memory_pipe()
        done = self.s2npy.Blocked.NOT_BLOCKED

        def handshake() -> None:
            server = self.s2npy.Connection(self.server_config, "server", io=server_end, trace=self.trace)
            client = self.s2npy.Connection(self.client_config, "client", io=client_end, server_name="localhost",
                                           trace=self.trace)
            client_done = server_done = False
            while not (client_done and server_done):
                client_done = client_done or client.try_negotiate() is done
                server_done = server_done or server.try_negotiate() is done
            server.close()
            client.close()

        return handshake


class SslContestant(SteppedContestant):
    """Python's ssl module (OpenSSL): SSLContext.wrap_socket and SSLObject over MemoryBIO."""

    def __init__(self, opts: dict[str, str]) -> None:
        self.server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.server_context.load_cert_chain(opts["cert"], opts["key"])
        self.server_context.set_ecdh_curve("prime256v1")
        self.client_context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        self.client_context.load_verify_locations(opts["ca"])
        if opts["policy"] == TLS12_POLICY:
            self.client_context.maximum_version = ssl.TLSVersion.TLSv1_2
        self.session: ssl.SSLSession | None = None

    def start(self, side: str, io: socket.socket, prefer: str | None = None) -> ssl.SSLSocket:
        """``wrap_socket``, with the handshake left to ``negotiate`` (the same work either way)."""
        if side == "server":
            return self.server_context.wrap_socket(io, server_side=True, do_handshake_on_connect=False)
        return self.client_context.wrap_socket(io, server_hostname="localhost", session=self.session,
                                               do_handshake_on_connect=False)

    @staticmethod
    def negotiate(connection: ssl.SSLSocket) -> None:
        connection.do_handshake()

    def keep_session(self, client: ssl.SSLSocket) -> None:
        self.session = client.session

    @staticmethod
    def resumed(client: ssl.SSLSocket) -> bool:
        return client.session_reused

    @staticmethod
    def close(connection: ssl.SSLSocket, sock: socket.socket) -> None:
        connection.close()

    def memory_worker(self) -> Callable[[], None]:
        """In-memory handshakes over two MemoryBIOs kept for the worker (see S2npyContestant's)."""
        to_server, to_client = ssl.MemoryBIO(), ssl.MemoryBIO()

        def handshake() -> None:
            server = self.server_context.wrap_bio(to_server, to_client, server_side=True)
            client = self.client_context.wrap_bio(to_client, to_server, server_hostname="localhost")
            client_done = server_done = False
            while not (client_done and server_done):
                client_done = client_done or _step(client)
                server_done = server_done or _step(server)
            to_client.read()  # OpenSSL's TLS 1.3 server has sent its session tickets, unread by the client

        return handshake


TLS12_POLICY = "20240501"


def _step(endpoint: ssl.SSLObject) -> bool:
    try:
        endpoint.do_handshake()
    except ssl.SSLWantReadError:
        return False
    return True


def read(path: str) -> bytes:
    return Path(path).read_bytes()


class Pair:
    """A server thread fed with fresh socketpair ends; the caller is the client."""

    def __init__(self, contestant: Any, keep: list | None = None) -> None:
        self.contestant = contestant
        self.keep = keep
        self.inbox: queue.SimpleQueue = queue.SimpleQueue()
        self.acks: queue.SimpleQueue = queue.SimpleQueue()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while (sock := self.inbox.get()) is not None:
            connection = self.contestant.server(sock)
            if self.keep is not None:
                self.keep.append((connection, sock))
            else:
                self.contestant.close(connection, sock)
            self.acks.put(True)

    def handshake(self) -> tuple[Any, socket.socket]:
        """One full handshake over a fresh socketpair; returns the client side."""
        server_sock, client_sock = socket.socketpair()
        self.inbox.put(server_sock)
        connection = self.contestant.client(client_sock)
        self.acks.get()
        return connection, client_sock

    def handshake_and_close(self) -> None:
        connection, sock = self.handshake()
        self.contestant.close(connection, sock)

    def stop(self) -> None:
        self.inbox.put(None)
        self.thread.join()


def prime_session(contestant: Any) -> None:
    """A full handshake whose client reads one byte, so it gets the TLS 1.3 ticket."""
    server_sock, client_sock = socket.socketpair()
    box: list = []
    thread = threading.Thread(target=lambda: box.append(contestant.server(server_sock)))
    thread.start()
    client = contestant.client(client_sock)
    thread.join()
    box[0].send(b"x")
    client.recv(1)
    contestant.keep_session(client)
    contestant.close(box[0], server_sock)
    contestant.close(client, client_sock)


def timed(work: Callable[[], None], seconds: float, threads: int = 1) -> dict:
    """Run ``work()``'s callable in a loop on ``threads`` threads for ``seconds``.

    Returns operations per second of wall time and per second of process CPU
    time (all threads): the second is what a busy shared machine disturbs least.
    """
    counts = [0] * threads

    def loop(index: int) -> None:
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            work_of[index]()
            counts[index] += 1

    work_of = [work() for _ in range(threads)]
    start, cpu = time.perf_counter(), time.process_time()
    workers = [threading.Thread(target=loop, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return {"value": sum(counts) / (time.perf_counter() - start), "count": sum(counts),
            "per_cpu": sum(counts) / (time.process_time() - cpu)}


def run_handshake(contestant: Any, opts: dict[str, str]) -> dict:
    if opts.get("resume") == "1":
        contestant.prime_session()
    pairs: list[Pair] = []

    def new_worker() -> Callable[[], None]:
        pairs.append(Pair(contestant))
        pair = pairs[-1]
        if opts.get("resume") != "1":
            return pair.handshake_and_close

        connection, sock = pair.handshake()  # checked once per pair: the check is no part of the work
        if not contestant.resumed(connection):
            raise RuntimeError("the handshake was not resumed")
        contestant.close(connection, sock)
        return pair.handshake_and_close

    result = timed(new_worker, float(opts["seconds"]), int(opts.get("pairs", "1")))
    for pair in pairs:
        pair.stop()
    return result


def run_memory_handshake(contestant: Any, opts: dict[str, str]) -> dict:
    return timed(contestant.memory_worker, float(opts["seconds"]), int(opts.get("pairs", "1")))


def run_bulk(contestant: Any, opts: dict[str, str]) -> dict:
    """MB/s from client to server in ``chunk``-byte writes, ``total`` bytes, after one handshake."""
    chunk, total = int(opts["chunk"]), int(opts["total"])
    server_sock, client_sock = socket.socketpair()
    box: list = []
    thread = threading.Thread(target=lambda: box.append(contestant.server(server_sock, prefer="throughput")))
    thread.start()
    client = contestant.client(client_sock, prefer="throughput")
    thread.join()
    server = box[0]

    def receive() -> None:
        buffer = bytearray(65536)
        received = 0
        while received < total:
            count = server.recv_into(buffer)
            if count <= 0:
                raise RuntimeError("bulk receiver: connection closed early")
            received += count

    data = bytes(chunk)
    start, cpu = time.perf_counter(), time.process_time()
    receiver = threading.Thread(target=receive)
    receiver.start()
    for _ in range(total // chunk):
        client.sendall(data)
    receiver.join()
    return {"value": total / (time.perf_counter() - start) / 1e6,
            "per_cpu": total / (time.process_time() - cpu) / 1e6}


def raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def run_idle_rss(contestant: Any, opts: dict[str, str]) -> dict:
    """KiB of RSS per idle established connection (client and server ends both count)."""
    raise_fd_limit()
    count = int(opts["count"])
    kept: list = []
    pair = Pair(contestant, keep=kept)
    clients = [pair.handshake() for _ in range(8)]  # warm-up: lazy initialisation is not per connection
    before = rss_kib()
    clients += [pair.handshake() for _ in range(count)]
    after = rss_kib()
    pair.stop()
    return {"value": (after - before) / (2 * count), "connections": 2 * count}


def run_rss_growth(contestant: Any, opts: dict[str, str]) -> dict:
    """RSS growth (KiB) from 10% of ``count`` handshakes to the end of them."""
    count = int(opts["count"])
    pair = Pair(contestant)
    first = 0
    for index in range(1, count + 1):
        pair.handshake_and_close()
        if index == count // 10:
            first = rss_kib()
    last = rss_kib()
    pair.stop()
    return {"value": last - first, "rss_kib": last}


CONTESTANTS = {"s2npy": S2npyContestant, "ssl": SslContestant}
WORKLOADS = {"handshake": run_handshake, "memory_handshake": run_memory_handshake, "bulk": run_bulk,
             "idle_rss": run_idle_rss, "rss_growth": run_rss_growth}


#: native_bench's defaults for the keys a command leaves out (cert, key and ca have none).
DEFAULTS = {"policy": "default_tls13", "seconds": "1.0", "pairs": "1", "resume": "0", "reuse": "1",
            "chunk": "65536", "total": str(1 << 24), "count": "1000", "trace": "0"}
REQUIRED = ("cert", "key", "ca")
NUMBERS = {"seconds": positive_seconds, "pairs": at_least(1), "chunk": at_least(1), "total": at_least(1),
           "count": at_least(1)}


def parse_command(argv: list[str]) -> tuple[Any, Callable[..., dict], dict[str, str]]:
    """The contestant class, the workload and its keys, or a usage error (exit 2) saying what is wrong."""
    parser = argparse.ArgumentParser(prog="py_bench.py", description=__doc__.splitlines()[0])
    parser.add_argument("contestant", choices=CONTESTANTS)
    parser.add_argument("workload", choices=WORKLOADS)
    parser.add_argument("options", nargs="*", metavar="key=value")
    args = parser.parse_args(argv)
    opts = dict(DEFAULTS)
    for option in args.options:
        key, equals, value = option.partition("=")
        if not equals or key not in DEFAULTS and key not in REQUIRED:
            parser.error(f"{option!r} is not key=value with one of the keys {', '.join([*REQUIRED, *DEFAULTS])}")
        if key in NUMBERS:
            try:
                NUMBERS[key](value)
            except argparse.ArgumentTypeError as exc:
                parser.error(f"{key}: {exc}")
        opts[key] = value
    missing = [key for key in REQUIRED if key not in opts]
    if missing:
        parser.error("missing " + ", ".join(f"{key}=PEM-FILE" for key in missing))
    return CONTESTANTS[args.contestant], WORKLOADS[args.workload], opts


def main(argv: list[str]) -> None:
    contestant, workload, opts = parse_command(argv)
    print(json.dumps(workload(contestant(opts), opts)))


if __name__ == "__main__":
    main(sys.argv[1:])
