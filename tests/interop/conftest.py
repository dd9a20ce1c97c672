"""Interop fixtures and the matrix collector.

Tests declare their matrix cell with the ``matrix`` fixture; the hooks at the
bottom collect each cell with the real outcome of its test and, at the end of
the session, ``report.py`` writes ``results.json`` and ``MATRIX.md`` next to
this file. The machinery for running peers is in ``harness.py``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

import report
from s2npy.pki import make_pki


@dataclass
class Cell:
    """One matrix cell: its section, row labels, expectation text and the observations made."""

    section: str
    labels: dict[str, str]
    expected: str
    reason: str = ""
    observed: dict[str, str] = field(default_factory=dict)


@pytest.fixture
def matrix(request):
    """``matrix(section, expected, reason, **labels)`` declares this test's cell; returns it."""
    def declare(section: str, expected: str, reason: str = "", **labels: str) -> Cell:
        cell = Cell(section, {key: str(value) for key, value in labels.items()}, expected, reason)
        request.node.user_properties.append(("matrix_cell", cell))
        return cell
    return declare


# --- PKI on disk -------------------------------------------------------------------------

@pytest.fixture(scope="session")
def rsa_pki_files(rsa_pki, tmp_path_factory):
    """``rsa_pki`` written as files (same names as ``pki_files``)."""
    return rsa_pki.write(tmp_path_factory.mktemp("rsa-pki"))


@pytest.fixture(scope="session")
def sni_pkis(tmp_path_factory):
    """Two PKIs whose server certificates are for ``alpha.test`` and ``beta.test``, with files."""
    pkis = {name: make_pki("ecdsa", server_names=[name]) for name in ("alpha.test", "beta.test")}
    files = {name: pki.write(tmp_path_factory.mktemp(name)) for name, pki in pkis.items()}
    return pkis, files


# --- collecting the matrix -----------------------------------------------------------------

_CELLS: list[dict] = []
_DESELECTED: list[int] = [0]


def pytest_deselected(items):
    _DESELECTED[0] += len(items)


def pytest_runtest_logreport(report):
    """Record each declared cell with the real outcome of its test."""
    cells = [value for key, value in report.user_properties if key == "matrix_cell"]
    if not cells or not (report.when == "call" or report.failed):
        return
    for cell in cells:
        _CELLS.append({"nodeid": report.nodeid, "section": cell.section, "labels": cell.labels,
                       "expected": cell.expected, "reason": cell.reason, "observed": cell.observed,
                       "verified": report.passed, "outcome": report.outcome})


def pytest_sessionfinish(session, exitstatus):
    """Write results.json and MATRIX.md (a partial run merges into the previous results)."""
    if not _CELLS:
        return
    full_run = _DESELECTED[0] == 0 and not session.config.option.keyword \
        and not session.config.option.markexpr and not getattr(session.config.option, "lf", False)
    report.save(_CELLS, merge=not full_run)
