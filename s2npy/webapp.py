"""What ``s2npy serve`` does after the handshake: echo, a small HTTPS page, WebSocket echo.

Each app takes a finished :class:`~s2npy.Connection` (``recv``/``sendall``)
and returns one line for the server log. The page shows how the connection
was negotiated and, given a ``wss://`` URL, opens a WebSocket to it from the
page's origin, sends a message and writes what happened into the element
``#ws`` (``ws-echo:...``, ``ws-error`` or ``ws-closed:CODE``) and reports it to
its own server (``GET /report?ws=STATE``, logged), so the server log shows the
cross-origin WebSocket's fate as the browser saw it.
"""

from __future__ import annotations

import html
import json
from collections.abc import Callable
from urllib.parse import unquote

from .connection import Connection

MAX_REQUEST_HEAD = 65536
PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>s2npy serve</title></head>
<body><h1>s2npy serve</h1>
<p id="tls">{facts}</p>
<p>WebSocket: <span id="ws">{ws_state}</span></p>
<script>
const url = {ws_url};
const out = document.getElementById("ws");
if (url) {{
  const ws = new WebSocket(url);
  ws.onopen = () => ws.send("hello from the page");
  const report = (state) => {{
    if (out.textContent !== "pending") return;
    out.textContent = state;
    fetch("/report?ws=" + encodeURIComponent(state));
  }};
  ws.onmessage = (event) => {{ report("ws-echo:" + event.data); ws.close(); }};
  ws.onerror = () => report("ws-error");
  ws.onclose = (event) => report("ws-closed:" + event.code);
}}
</script></body></html>
"""


def echo(connection: Connection, ws_url: str | None) -> str:
    """Send back everything received until the peer closes."""
    total = 0
    while data := connection.recv():
        connection.sendall(data)
        total += len(data)
    return f"echo: {total} bytes"


def read_request_head(connection: Connection) -> tuple[bytes, bytes]:
    """The HTTP request head (up to the blank line) and any bytes read past it."""
    buffer = b""
    while b"\r\n\r\n" not in buffer and len(buffer) < MAX_REQUEST_HEAD:
        data = connection.recv()
        if not data:
            break
        buffer += data
    head, _, rest = buffer.partition(b"\r\n\r\n")
    return head, rest


def page(connection: Connection, ws_url: str | None) -> str:
    """Answer one HTTP request: the page for ``/``, 404 otherwise."""
    head, _ = read_request_head(connection)
    return respond(connection, head, ws_url)


def respond(connection: Connection, head: bytes, ws_url: str | None) -> str:
    request_line = head.split(b"\r\n", 1)[0].decode("latin-1")
    parts = request_line.split()
    if len(parts) < 2:
        return f"http: no request ({len(head)} bytes)"
    facts = connection.facts()
    if parts[1] == "/":
        status, body = "200 OK", PAGE.format(
            facts=html.escape(f"{facts.protocol} {facts.cipher}, ALPN {facts.alpn}, client certificate "
                              f"{'sent' if facts.client_cert_sent else 'not sent'}"),
            ws_state="pending" if ws_url else "not configured", ws_url=json.dumps(ws_url))
    elif parts[1].startswith("/report?"):
        status, body = "204 No Content", ""
    else:
        status, body = "404 Not Found", "not found\n"
    data = body.encode()
    connection.sendall(f"HTTP/1.1 {status}\r\nContent-Type: text/html; charset=utf-8\r\n"
                       f"Content-Length: {len(data)}\r\nConnection: close\r\n\r\n".encode() + data)
    return f"http: {parts[0]} {unquote(parts[1])} -> {status.split()[0]}"


def websocket(connection: Connection, ws_url: str | None) -> str:
    """RFC 6455 echo (wsproto); a plain HTTP request gets the page instead."""
    head, rest = read_request_head(connection)
    if b"upgrade: websocket" not in head.lower():
        return respond(connection, head, ws_url)
    try:
        from wsproto import ConnectionType, WSConnection
        from wsproto.events import AcceptConnection, CloseConnection, Message, Ping, Request
    except ImportError as exc:
        raise RuntimeError("WebSocket mode needs wsproto: pip install 's2npy[serve]'") from exc
    ws = WSConnection(ConnectionType.SERVER)
    ws.receive_data(head + b"\r\n\r\n" + rest)
    echoed, closing = [], False
    while not closing:
        for event in ws.events():
            if isinstance(event, Request):
                connection.sendall(ws.send(AcceptConnection()))
            elif isinstance(event, Message):
                echoed.append(len(event.data))
                connection.sendall(ws.send(Message(data=event.data, message_finished=event.message_finished)))
            elif isinstance(event, Ping):
                connection.sendall(ws.send(event.response()))
            elif isinstance(event, CloseConnection):
                connection.sendall(ws.send(event.response()))
                closing = True
        if not closing:
            data = connection.recv()
            ws.receive_data(data or None)
            closing = not data
    return f"websocket: echoed {len(echoed)} message(s)"


APPS: dict[str, Callable[[Connection, str | None], str]] = {"echo": echo, "https": page, "websocket": websocket}
