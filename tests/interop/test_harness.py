"""The interop harness itself: reading peers' alert messages, and rendering the matrix."""

from __future__ import annotations

import pytest

import report
from harness import alert_from_text

PEER_MESSAGES = {
    "140: error:0A00045C:SSL routines::tlsv13 alert certificate required:ssl/record/rec_layer_s3.c:1586:"
    "SSL alert number 116": "certificate_required",
    "*** Fatal error: A TLS fatal alert has been received.\n*** Received alert [48]: Unknown CA": "unknown_ca",
    "error:0A000418:SSL routines::tlsv1 alert unknown ca:": "unknown_ca",
    "SSLError(1, '[SSL: TLSV13_ALERT_CERTIFICATE_REQUIRED] tlsv13 alert certificate required')":
        "certificate_required",
    "OSError: TLSRemoteAlert() Received alert [70]": "protocol_version",
    "read:errno=104": None,
    "*** Server has terminated the connection abnormally.": None,
}


@pytest.mark.parametrize("text,alert", list(PEER_MESSAGES.items()))
def test_alert_from_peer_output(text, alert):
    """Each peer's way of saying which alert it received maps to one s2npy alert name."""
    assert alert_from_text(text) == alert


def test_matrix_marks_failed_cells():
    """A cell whose test failed is shown as not verified, with the outcome, never as "yes"."""
    cell = {"nodeid": "t", "section": "S", "labels": {"peer": "p|q"}, "expected": "ok", "reason": "why",
            "observed": {"s2npy": "ok"}}
    data = {"platform": "Linux x86_64", "s2n": {"s2npy": "0"}, "peers": {"p": "p 1"},
            "cells": [{**cell, "verified": True, "outcome": "passed"},
                      {**cell, "nodeid": "u", "verified": False, "outcome": "failed"}]}
    text = report.render_matrix(data)
    assert "**1 of 2 cells verified.**" in text
    assert "| p\\|q | ok | ok | yes | why |" in text
    assert "| p\\|q | ok | ok | **NO (failed)** | why |" in text
    assert "| S | 1 / 2 |" in report.render_readme_section(data)
