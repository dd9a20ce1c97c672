"""asyncio TLS echo server: s2npy.aio against the stdlib's asyncio ssl, in one run.

Each server runs alone in a child process; the load comes from this process
through the *same* client (stdlib asyncio ssl) for both, so only the server
differs. Two workloads:

- ``echo``: ``--connections`` persistent connections, each sending a
  ``--size``-byte request and waiting for its echo, for ``--seconds``;
- ``connect``: new connection (full handshake), one echo, close, repeated.

Reported per server: requests/s and server CPU time per request (the child's
own process time, which the client's cost does not blur), and the ratio
s2npy / ssl (above 1 means s2npy serves more requests/s or, for CPU, costs more).

    python benchmarks/bench_aio.py            # ~30 s
    python benchmarks/bench_aio.py --smoke    # a quick check that it all runs
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import ssl
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench_args import at_least, positive_seconds

BACKENDS = ("s2npy", "ssl")


@dataclass(frozen=True)
class Result:
    workload: str
    backend: str
    requests: int
    seconds: float
    server_cpu: float

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds

    @property
    def cpu_us_per_request(self) -> float:
        return self.server_cpu / max(self.requests, 1) * 1e6


# --- the servers (child processes) -------------------------------------------------------------


async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()


async def start(backend: str, files: dict[str, Path]) -> asyncio.Server:
    if backend == "s2npy":
        import s2npy
        from s2npy import aio

        config = s2npy.Config(certificates=[(files["server"], files["server_key"])], system_trust=False)
        return await aio.start_server(echo, "127.0.0.1", 0, config=config, backlog=1024)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(files["server"], files["server_key"])
    return await asyncio.start_server(echo, "127.0.0.1", 0, ssl=context, backlog=1024)


async def serve(backend: str, files: dict[str, Path], pipe) -> None:
    """Report (port, CPU so far), serve until told to stop, then report the CPU used."""
    server = await start(backend, files)
    pipe.send((server.sockets[0].getsockname()[1], time.process_time()))
    await asyncio.get_running_loop().run_in_executor(None, pipe.recv)
    pipe.send(time.process_time())
    server.close()


def server_process(backend: str, files: dict[str, Path], pipe) -> None:
    asyncio.run(serve(backend, files, pipe))


# --- the load (this process) ----------------------------------------------------------------------


async def echo_client(port: int, context: ssl.SSLContext, size: int, deadline: float) -> int:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context, server_hostname="localhost")
    message, count = b"x" * size, 0
    while time.perf_counter() < deadline:
        writer.write(message)
        await reader.readexactly(size)
        count += 1
    writer.close()
    await writer.wait_closed()
    return count


async def connect_client(port: int, context: ssl.SSLContext, size: int, deadline: float) -> int:
    message, count = b"x" * size, 0
    while time.perf_counter() < deadline:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context,
                                                       server_hostname="localhost")
        writer.write(message)
        await reader.readexactly(size)
        writer.close()
        await writer.wait_closed()
        count += 1
    return count


WORKLOADS = {"echo": echo_client, "connect": connect_client}


async def load(workload: str, port: int, context: ssl.SSLContext, args: argparse.Namespace) -> tuple[int, float]:
    started = time.perf_counter()
    deadline = started + args.seconds
    client = WORKLOADS[workload]
    counts = await asyncio.gather(*(client(port, context, args.size, deadline) for _ in range(args.connections)))
    return sum(counts), time.perf_counter() - started


def measure(workload: str, backend: str, files: dict[str, Path], args: argparse.Namespace) -> Result:
    parent, child = multiprocessing.Pipe()
    process = multiprocessing.Process(target=server_process, args=(backend, files, child))
    process.start()
    port, cpu_start = parent.recv()
    context = ssl.create_default_context(cafile=str(files["ca"]))
    requests, seconds = asyncio.run(load(workload, port, context, args))
    parent.send("stop")
    cpu_used = parent.recv() - cpu_start
    process.join(10)
    return Result(workload, backend, requests, seconds, cpu_used)


def report(results: list[Result]) -> str:
    lines = [f"{'workload':8} {'server':6} {'requests/s':>11} {'server CPU us/req':>18}"]
    for result in results:
        lines.append(f"{result.workload:8} {result.backend:6} {result.per_second:11.0f} "
                     f"{result.cpu_us_per_request:18.1f}")
    by_key = {(r.workload, r.backend): r for r in results}
    for workload in WORKLOADS:
        ours, theirs = by_key[(workload, "s2npy")], by_key[(workload, "ssl")]
        lines.append(f"{workload}: s2npy/ssl requests/s ratio {ours.per_second / theirs.per_second:.2f}, "
                     f"server CPU per request ratio {ours.cpu_us_per_request / theirs.cpu_us_per_request:.2f}")
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=positive_seconds, default=6.0, help="per workload and server")
    parser.add_argument("--connections", type=at_least(1), default=32)
    parser.add_argument("--size", type=at_least(1), default=256, help="bytes per request (and echo)")
    parser.add_argument("--smoke", action="store_true", help="0.5 s, 4 connections: does it all run?")
    args = parser.parse_args(argv)
    if args.smoke:
        args.seconds, args.connections = 0.5, 4
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from s2npy.pki import make_pki

    with tempfile.TemporaryDirectory() as directory:
        files = make_pki().write(directory)
        results = [measure(workload, backend, files, args) for workload in WORKLOADS for backend in BACKENDS]
    print(f"{args.connections} connections, {args.size}-byte requests, {args.seconds} s each, "
          f"client: stdlib asyncio ssl, Python {sys.version.split()[0]}")
    print(report(results))
    return 0 if all(result.requests for result in results) else 1


if __name__ == "__main__":
    sys.exit(main())
