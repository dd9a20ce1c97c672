"""Renderers of connection traces: a text ladder diagram for people, JSON lines for tools.

Text (:func:`render_text`, :func:`render_pair`): one line per event, time in ms,
then a lane showing who did it (``C ------> S`` client to server, ``C <------ S``
server to client, ``C *`` / ``* S`` something local to one side), then what::

      2.963 ms  C ------> S  ClientHello 257 B
                               versions: TLSv1.3, TLSv1.2
      3.301 ms  C <------ S  encrypted record 54 B: SERVER_CERT_REQ
      3.301 ms  C <------ S  [decrypted] CertificateRequest 50 B
                               sig_algs: (9) ecdsa_secp256r1_sha256, ...

With key log lines in the trace (``Config(key_log=...)``), each TLS 1.3 handshake
record that was decrypted (``s2npy.trace.decrypt``) is followed by the messages or
alert inside it, marked ``[decrypted]``; the record line stays, as it was on the
wire. A record that should have opened and did not says why.

JSON lines (:func:`render_jsonl`): one object per event; schema version
``SCHEMA`` (bumped when a field changes meaning or goes away, or when events of a
kind may come from somewhere new). Schema 2 (from 1): ``handshake`` and ``alert``
events may be decrypted from TLS 1.3 records (``decrypted``), records have ``note``.
Key log secrets never appear in any event. Every line has
``schema``, ``t_ms`` (ms since the trace started), ``side`` (``client`` or ``server``:
whose trace recorded it) and ``kind``; the other fields by kind:

=====================  =======================================================================
kind                   fields
=====================  =======================================================================
``record``             direction (``c2s``/``s2c``), content_type, content_type_name, version,
                       length, encrypted, note (why a record a key log should have opened did
                       not, else null), s2n_messages (list, optional: from checkpoints)
``handshake``          direction, msg_type, name, length, details (dict, decoded body),
                       decrypted (true: read from inside the encrypted record before it)
``alert``              direction, level, level_name, description, description_name, decrypted
``change_cipher_spec`` direction
``non_tls``            direction, what (``http``/``sslv2``/``garbage``), preview (text)
``malformed``          direction, reason, offset
``negotiate``          call (1-based), duration_ms, outcome (``done``, ``blocked_on_read``, ...,
                       ``error``), before, after (s2n message names), handshake_type,
                       bytes_in, bytes_out (wire bytes during the call)
``checkpoint``         message (s2n name), role
``handshake_event``    protocol, cipher, group, policy, handshake_time_ns, duration_ns,
                       error_code, error_name
``client_hello``       server_name, ja3, ja4, and the ClientHello accessors' details
``eof``                direction (the peer's stream ended: TCP FIN or a transport's 0-byte read)
``keylog``             label (the secret itself is never rendered)
``result``             ok (true) and the negotiated facts
``error``              ok (false), error_class, error, message, errno, alert, alert_name,
                       last_message, handshake_type, diagnosis (dict, see ``Diagnosis``)
=====================  =======================================================================
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from .diagnosis import alert_meaning, message_title
from .tls_names import version_name
from .wire import Alert, HandshakeMessage, NonTLS, Record

if TYPE_CHECKING:
    from .recorder import ConnectionTrace, TraceEvent

#: Version of the JSON lines schema documented above.
SCHEMA = 2

LANES = {"c2s": "C ------> S", "s2c": "C <------ S", "client": "C *        ", "server": "        * S"}
#: Readable names of decoded detail fields (others are shown as they are).
_DETAIL_LABELS = {"signature_algorithms": "sig_algs", "server_name": "SNI", "alpn": "ALPN",
                  "supported_versions": "versions", "key_share": "key_shares", "groups": "groups"}
_WIDTH = 110
_INDENT = " " * 27


def render_text(trace: "ConnectionTrace") -> str:
    """One connection's trace as a ladder diagram (see the module doc)."""
    header = f"s2npy trace of the {trace.side} side"
    return _ladder(header, trace.events())


def render_pair(server: "ConnectionTrace | None", client: "ConnectionTrace | None") -> str:
    """Both sides of one connection in one ladder (e.g. ``handshake(..., trace=True).traces``).

    Each record appears once, as its sender saw it; the local events (negotiate
    calls, results) of both sides are interleaved. The two traces must share a
    clock (record them through one :class:`~s2npy.trace.Tracer`). A missing
    side (a raw peer) is shown through the other side's eyes.
    """
    present = [trace for trace in (server, client) if trace is not None]
    events = [event for trace in present for event in trace.events()
              if len(present) == 1 or event.wire is None or _is_outgoing(event)]
    events.sort(key=lambda event: event.t)
    return _ladder("s2npy trace of both sides", events)


def render_jsonl(trace: "ConnectionTrace") -> str:
    """One JSON object per event and line (schema in the module doc)."""
    return "\n".join(json.dumps({"schema": SCHEMA, **event.to_dict()}, default=str) for event in trace.events())


def _is_outgoing(event: "TraceEvent") -> bool:
    return (event.wire.direction == "c2s") == (event.side == "client")


def _ladder(header: str, events: Iterable["TraceEvent"]) -> str:
    lines = [header, f"{'time':>12}  client  server"]
    previous_type: dict[str, str | None] = {}
    for event in events:
        if event.kind == "checkpoint":  # shown as the message names of the records they name
            continue
        direction = event.wire.direction if event.wire is not None else event.data.get("direction")
        lane = LANES[direction or event.side]
        text, *details = _describe(event, previous_type)
        lines.append(f"{event.t * 1000:9.3f} ms  {lane}  {text}")
        lines += [textwrap.fill(detail, _WIDTH, initial_indent=_INDENT, subsequent_indent=_INDENT + "  ")
                  for detail in details]
    return "\n".join(lines)


def _describe(event: "TraceEvent", previous_type: dict[str, str | None]) -> list[str]:
    """The line for an event, then its detail lines."""
    if event.wire is not None:
        return _describe_wire(event)
    if event.kind == "negotiate":
        return [_describe_negotiate(event.side, event.data, previous_type)]
    return _LOCAL[event.kind](event.data)


def _describe_wire(event: "TraceEvent") -> list[str]:
    wire = event.wire
    if isinstance(wire, Record):
        return [_describe_record(wire, event.data.get("s2n_messages"))]
    if isinstance(wire, HandshakeMessage):
        text, *details = _describe_handshake(wire)
        return [_decrypted_prefix(wire.decrypted) + text, *details]
    if isinstance(wire, Alert):
        meaning = alert_meaning(wire.description)
        return [f"{_decrypted_prefix(wire.decrypted)}Alert {wire.level_name} {wire.description_name} "
                f"({wire.description})" + (f": {meaning}" if meaning else "")]
    if isinstance(wire, NonTLS):
        return [f"NOT TLS ({wire.what}): {wire.preview!r}"]
    return [wire.summary().split(" ", 1)[1]]


def _decrypted_prefix(decrypted: bool) -> str:
    """Mark what was read from inside an encrypted record, so no one mistakes it for plaintext."""
    return "[decrypted] " if decrypted else ""


def _describe_record(record: Record, messages: list[str] | None) -> str:
    if record.encrypted:
        if not messages and record.content_type_name == "handshake":
            messages = ["Finished"]  # TLS 1.2: the only encrypted handshake message of a handshake
        held = f": {', '.join(messages)}" if messages else ""
        note = f" (not decrypted: {record.note})" if record.note else ""
        return f"encrypted record {record.length} B{held}{note}"
    return f"record {record.content_type_name} {version_name(record.version)} {record.length} B"


def _describe_handshake(message: HandshakeMessage) -> list[str]:
    title = message_title(message.name)
    details = dict(message.details)
    flag = " EMPTY (no certificate)" if details.pop("empty", False) else ""
    return [f"{title} {message.length} B{flag}"] + [
        f"{_DETAIL_LABELS.get(key, key)}: {_value(value)}" for key, value in details.items()]


def _value(value: Any) -> str:
    if isinstance(value, list):
        return f"({len(value)}) " + ", ".join(map(str, value)) if len(value) > 3 else ", ".join(map(str, value))
    if isinstance(value, dict):
        return "; ".join(f"{key}={_value(item)}" for key, item in value.items())
    return str(value)


def _describe_negotiate(side: str, data: dict[str, Any], previous_type: dict[str, str | None]) -> str:
    outcome = data["outcome"].replace("_", " ")
    text = (f"negotiate #{data['call']}: {outcome} ({data['duration_ms']:.2f} ms), "
            f"{data['before']} -> {data['after']}, in {data['bytes_in']} B, out {data['bytes_out']} B")
    if data["handshake_type"] != previous_type.get(side):
        previous_type[side] = data["handshake_type"]
        text += f" [{data['handshake_type']}]"
    return text


def _describe_handshake_event(data: dict[str, Any]) -> list[str]:
    error = f", error {data['error_name']}" if data.get("error_name") else ""
    return [f"s2n handshake event: cipher {data['cipher']}, group {data['group']}, policy {data['policy']}, "
            f"{data['handshake_time_ns'] / 1e6:.2f} ms inside negotiate{error}"]


def _describe_client_hello(data: dict[str, Any]) -> list[str]:
    return [f"client hello callback: SNI {data.get('server_name')}", f"JA3: {data.get('ja3')}",
            f"JA4: {data.get('ja4')}"]


def _describe_eof(data: dict[str, Any]) -> list[str]:
    sender = "client" if data["direction"] == "c2s" else "server"
    return [f"EOF: the {sender} closed its end of the connection (no more bytes)"]


def _describe_keylog(data: dict[str, Any]) -> list[str]:
    return [f"key logged: {data['label']}"]


def _describe_result(data: dict[str, Any]) -> list[str]:
    shown = ("protocol", "cipher", "group", "signature_scheme", "alpn", "server_name", "handshake_type",
             "client_cert_sent", "session_resumed")
    facts = ", ".join(f"{key} {data[key]}" for key in shown if data.get(key) not in (None, "", [], False))
    return [f"HANDSHAKE OK: {facts}"]


def _describe_error(data: dict[str, Any]) -> list[str]:
    lines = [f"HANDSHAKE FAILED: {data['error_class']} {data['error']}: {data['message']}"]
    diagnosis = data.get("diagnosis")
    if diagnosis:
        lines += [f"diagnosis: {diagnosis['headline']}", f"why: {diagnosis['explanation']}",
                  f"next step: {diagnosis['next_step']}"]
    return lines


_LOCAL = {"handshake_event": _describe_handshake_event,
          "client_hello": _describe_client_hello, "eof": _describe_eof, "keylog": _describe_keylog,
          "result": _describe_result, "error": _describe_error}
