"""Renderers of a ConnectionTrace: a text ladder and JSON lines."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .recorder import ConnectionTrace


def render_text(trace: "ConnectionTrace") -> str:
    """One line per event: time, arrow, summary."""
    lines = []
    for event in trace.events():
        if event.wire is not None:
            arrow = "->" if (event.wire.direction == "c2s") == (trace.side == "client") else "<-"
            lines.append(f"{event.t * 1000:8.1f} ms  {arrow}  {event.wire.summary()}")
        else:
            lines.append(f"{event.t * 1000:8.1f} ms  ..  {event.kind} {event.data}")
    return "\n".join(lines)


def render_jsonl(trace: "ConnectionTrace") -> str:
    """One JSON object per event and line."""
    return "\n".join(json.dumps(event.to_dict(), default=str) for event in trace.events())
