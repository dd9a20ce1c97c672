"""s2npy.aio against real peers over loopback: stdlib asyncio ssl, blocking ssl sockets, s2npy itself."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import importlib.util
import os
import socket
import ssl
import time
from pathlib import Path

import pytest
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, CloseConnection, Request, TextMessage

import s2npy
from s2npy import aio


def run(coroutine):
    return asyncio.run(asyncio.wait_for(coroutine, 60))


async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(65536):
        writer.write(data)
        await writer.drain()
    writer.close()


@contextlib.asynccontextmanager
async def s2npy_server(config: s2npy.Config, handler=echo, **options):
    server = await aio.start_server(handler, "127.0.0.1", 0, config=config, backlog=512, **options)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


@pytest.fixture
def ssl_client(pki_files) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(pki_files["ca"]))


async def echo_roundtrip(reader, writer, payload: bytes) -> str:
    """Send ``payload`` in pieces while reading the echo; the sha256 of what came back."""
    async def send() -> None:
        for start in range(0, len(payload), 7000):
            writer.write(payload[start:start + 7000])
            await writer.drain()

    sender = asyncio.create_task(send())
    echoed = await reader.readexactly(len(payload))
    await sender
    writer.close()
    await writer.wait_closed()
    return hashlib.sha256(echoed).hexdigest()


def test_200_concurrent_mixed_clients_echo_every_byte(server_config, client_config, ssl_client):
    s2n_client = client_config()

    async def one_client(index: int, port: int) -> tuple[str, str]:
        payload = os.urandom(1000 + index * 211)
        if index % 2:
            reader, writer = await aio.open_connection("127.0.0.1", port, config=s2n_client,
                                                      server_hostname="localhost")
        else:
            reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=ssl_client,
                                                           server_hostname="localhost")
        return hashlib.sha256(payload).hexdigest(), await echo_roundtrip(reader, writer, payload)

    async def main() -> list[tuple[str, str]]:
        async with s2npy_server(server_config()) as port:
            return await asyncio.gather(*(one_client(index, port) for index in range(200)))

    results = run(main())
    assert len(results) == 200
    assert all(sent == echoed for sent, echoed in results)


def test_s2npy_client_against_stdlib_asyncio_server(pki_files, client_config):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pki_files["server"], pki_files["server_key"])
    context.set_alpn_protocols(["h2"])
    payload = os.urandom(300_000)

    async def main():
        server = await asyncio.start_server(echo, "127.0.0.1", 0, ssl=context)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await aio.open_connection("127.0.0.1", port, config=client_config(alpn=["h2"]),
                                                  server_hostname="localhost")
        info = {key: writer.get_extra_info(key) for key in ("version", "cipher", "alpn_protocol", "peercert")}
        digest = await echo_roundtrip(reader, writer, payload)
        server.close()
        await server.wait_closed()
        return info, digest

    info, digest = run(main())
    assert digest == hashlib.sha256(payload).hexdigest()
    assert info["version"] == "TLSv1.3" and info["alpn_protocol"] == "h2"
    assert info["cipher"] in [("TLS_AES_256_GCM_SHA384", "TLSv1.3", 256), ("TLS_AES_128_GCM_SHA256", "TLSv1.3", 128),
                              ("TLS_CHACHA20_POLY1305_SHA256", "TLSv1.3", 256)]
    assert info["peercert"] == ssl._ssl._test_decode_cert(str(pki_files["server"]))


def test_client_handshake_timeout_on_silent_server(client_config):
    async def main() -> float:
        accepted = []
        silent = await asyncio.start_server(lambda reader, writer: accepted.append(writer), "127.0.0.1", 0)
        port = silent.sockets[0].getsockname()[1]
        started = time.monotonic()
        with pytest.raises(TimeoutError, match="handshake timed out"):
            await aio.open_connection("127.0.0.1", port, config=client_config(), server_hostname="localhost",
                                      handshake_timeout=0.3)
        for writer in accepted:
            writer.close()
        silent.close()
        return time.monotonic() - started

    assert 0.25 < run(main()) < 2


def test_server_handshake_timeout_drops_silent_client(server_config):
    handled = []

    async def main() -> tuple[bytes, float]:
        async with s2npy_server(server_config(), lambda r, w: handled.append(w), handshake_timeout=0.3) as port:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            started = time.monotonic()
            data = await reader.read()  # the server hangs up on us: EOF (or reset)
            writer.close()
            return data, time.monotonic() - started

    data, elapsed = run(main())
    assert data == b"" and 0.25 < elapsed < 2
    assert handled == []


def test_close_sends_close_notify_both_ways(server_config, client_config, pki_files):
    """Blocking stdlib peers with suppress_ragged_eofs=False: b"" only after a real close_notify."""
    def blocking_ssl_client(port: int) -> bytes:
        context = ssl.create_default_context(cafile=str(pki_files["ca"]))
        with context.wrap_socket(socket.create_connection(("127.0.0.1", port)), server_hostname="localhost",
                                 suppress_ragged_eofs=False) as tls:
            return tls.recv(100) + tls.recv(100)  # "hello" then b"" on close_notify (SSLEOFError otherwise)

    async def greet(reader, writer) -> None:
        writer.write(b"hello")
        writer.close()

    def blocking_ssl_server(listener: socket.socket) -> bytes:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(pki_files["server"], pki_files["server_key"])
        conn, _ = listener.accept()
        with context.wrap_socket(conn, server_side=True, suppress_ragged_eofs=False) as tls:
            tls.sendall(b"hi")
            return tls.recv(100) + tls.recv(100)  # "bye" then b"" on close_notify

    async def main() -> tuple[bytes, bytes]:
        async with s2npy_server(server_config(), greet) as port:
            from_server = await asyncio.to_thread(blocking_ssl_client, port)
        listener = socket.create_server(("127.0.0.1", 0))
        peer = asyncio.create_task(asyncio.to_thread(blocking_ssl_server, listener))
        reader, writer = await aio.open_connection("127.0.0.1", listener.getsockname()[1], config=client_config(),
                                                  server_hostname="localhost")
        assert await reader.readexactly(2) == b"hi"
        writer.write(b"bye")
        writer.close()
        seen_by_server = await peer
        listener.close()
        return from_server, seen_by_server

    assert run(main()) == (b"hello", b"bye")


def test_peer_close_notify_is_end_of_stream(server_config, client_config):
    async def main() -> bytes:
        async with s2npy_server(server_config(), lambda reader, writer: writer.close()) as port:
            reader, writer = await aio.open_connection("127.0.0.1", port, config=client_config(),
                                                      server_hostname="localhost")
            data = await reader.read()
            writer.close()
            return data

    assert run(main()) == b""


def test_backpressure_both_directions(server_config, client_config):
    """A reader that does not read pauses the socket; a writer facing it sees drain() wait."""
    big = os.urandom(12_000_000)  # more than loopback socket buffers hold
    server_side = {}
    reading_allowed = asyncio.Event

    async def slow_reader(reader, writer) -> None:
        server_side["writer"] = writer
        await server_side["go"].wait()
        server_side["received"] = await reader.readexactly(len(big))
        writer.close()

    async def main() -> None:
        server_side["go"] = reading_allowed()
        async with s2npy_server(server_config(), slow_reader, limit=4096) as port:
            reader, writer = await aio.open_connection("127.0.0.1", port, config=client_config(),
                                                      server_hostname="localhost")
            writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 65536)
            writer.write(big)
            drain = asyncio.create_task(writer.drain())
            await asyncio.sleep(0.3)
            assert not drain.done(), "drain() returned although the peer reads nothing"
            assert writer.transport.get_write_buffer_size() > 0
            assert not server_side["writer"].transport.is_reading()
            server_side["go"].set()
            await drain
            await reader.read()
            writer.close()
        assert server_side["received"] == big

    run(main())


def test_tracing_per_connection_and_failure_carries_trace(server_config, client_config, pki):
    traces = {}

    async def record(reader, writer) -> None:
        traces["server"] = writer.get_extra_info("s2n_connection").trace
        writer.close()

    async def main() -> s2npy.S2NError:
        async with s2npy_server(server_config(), record, trace=True) as port:
            reader, writer = await aio.open_connection("127.0.0.1", port, config=client_config(),
                                                      server_hostname="localhost", trace=False)
            traces["client"] = writer.get_extra_info("s2n_connection").trace
            await reader.read()
            writer.close()
        stranger = s2npy.Config(certificates=[(pki.untrusted_client.cert, pki.untrusted_client.key)],
                                system_trust=False)
        async with s2npy_server(stranger) as port:
            with pytest.raises(s2npy.S2NError) as caught:
                await aio.open_connection("127.0.0.1", port, config=client_config(),
                                          server_hostname="localhost", trace=True)
        return caught.value

    failure = run(main())
    assert traces["client"] is None
    assert "CLIENT_HELLO" in traces["server"].render_text()
    assert isinstance(failure, s2npy.ProtocolError)
    assert failure.trace is not None and failure.diagnosis is not None


def load_example(name: str):
    path = Path(__file__).parent.parent / "examples" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_wss_example_echoes_and_reports_client_certificates(server_config, client_config, ssl_client, pki_files):
    """examples/wss_asyncio_server.py with a per-connection rule: WebSocket echo; API clients asked for a cert."""
    example = load_example("wss_asyncio_server")
    args = example.parse_args(["--port", "0", "--rule", "non-browser", "--cert", str(pki_files["server"]),
                               "--key", str(pki_files["server_key"]), "--ca", str(pki_files["ca"])])

    async def next_event(ws: WSConnection, reader, kind: type):
        while True:
            for event in ws.events():
                if isinstance(event, kind):
                    return event
            ws.receive_data(await reader.read(65536))

    async def websocket_echo(reader, writer, text: str) -> str:
        ws = WSConnection(ConnectionType.CLIENT)
        writer.write(ws.send(Request(host="localhost", target="/echo")))
        await next_event(ws, reader, AcceptConnection)
        writer.write(ws.send(TextMessage(data=text)))
        reply = await next_event(ws, reader, TextMessage)
        writer.write(ws.send(CloseConnection(code=1000)))
        writer.close()
        return reply.data

    async def page(reader, writer) -> bytes:
        writer.write(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        body = await reader.read()
        writer.close()
        return body

    async def connect(port: int, config: s2npy.Config | None = None):
        if config is None:
            return await asyncio.open_connection("127.0.0.1", port, ssl=ssl_client, server_hostname="localhost")
        return await aio.open_connection("127.0.0.1", port, config=config, server_hostname="localhost")

    async def main() -> tuple[str, bytes, bytes]:
        server = await example.serve(args)
        port = server.sockets[0].getsockname()[1]
        echoed = await websocket_echo(*await connect(port, client_config()), "hello wss")
        api_page = await page(*await connect(port, client_config(with_cert=True)))
        stdlib_page = await page(*await connect(port))
        server.close()
        await server.wait_closed()
        return echoed, api_page, stdlib_page

    echoed, api_page, stdlib_page = run(main())
    assert echoed == "hello wss"
    assert b"client certificate sent: True" in api_page
    assert b"client certificate sent: False" in stdlib_page


@pytest.mark.parametrize("blinding", [False, True])
def test_failed_handshake_closes_at_once_or_after_blinding_delay(server_config, caplog, blinding):
    """An empty ClientHello fails the handshake (logged); blinding keeps the socket open meanwhile."""
    async def main() -> bool:
        async with s2npy_server(server_config(), blinding=blinding) as port:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"\x16\x03\x01\x00\x04\x01\x00\x00\x00")  # a handshake record: ClientHello, length 0
            try:
                await asyncio.wait_for(reader.read(), 0.5)  # an alert, if any, then EOF
                closed_at_once = True
            except TimeoutError:
                closed_at_once = False
            writer.close()
            return closed_at_once

    assert run(main()) is not blinding
    assert "TLS handshake with" in caplog.text and "failed" in caplog.text


def test_inbound_buffer_keeps_order_through_compaction_and_growth():
    inbound = aio.InboundBuffer(size=aio.MIN_READ * 2)
    stream = os.urandom(aio.MIN_READ * 5)
    written, out = 0, bytearray()
    while written < len(stream):
        space = inbound.space()
        count = min(len(space), 5000, len(stream) - written)
        space[:count] = stream[written:written + count]
        inbound.filled(count)
        written += count
        if written < aio.MIN_READ * 3:  # read a little, so unread bytes move to the front ...
            target = bytearray(3000)
            out += target[:inbound.read_into(target)]
    target = bytearray(len(inbound))  # ... then stop reading, so the buffer must grow
    out += target[:inbound.read_into(target)]
    assert bytes(out) == stream and len(inbound) == 0
