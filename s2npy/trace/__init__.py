"""Handshake tracing and failure diagnosis.

Turn tracing on per connection (``Connection(..., trace=True)``), for many
connections (``Connection(..., trace=tracer)`` with a shared :class:`Tracer`), for
an in-memory experiment (``handshake(..., trace=True)``) or for every connection
without code changes: set ``S2NPY_TRACE=1`` (text ladder) or ``S2NPY_TRACE=json``
(JSON lines) in the environment, or set the ``s2npy.trace`` logger to DEBUG.
Traces of finished handshakes go to the ``s2npy.trace`` logger (DEBUG on success,
INFO on failure); with ``S2NPY_TRACE`` set and no handler configured, they are
written to stderr.

A failed handshake's exception carries ``exc.trace`` and ``exc.diagnosis``
(:class:`Diagnosis`, made by :func:`diagnose`).
"""

from .diagnosis import Diagnosis, diagnose
from .recorder import ConnectionTrace, NegotiateCall, TraceEvent, Tracer
from .render import render_jsonl, render_pair, render_text

__all__ = ["ConnectionTrace", "Diagnosis", "NegotiateCall", "TraceEvent", "Tracer", "diagnose",
           "render_jsonl", "render_pair", "render_text"]
