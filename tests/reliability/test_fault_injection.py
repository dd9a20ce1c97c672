"""Fault injection in the I/O layer: short reads/writes, EINTR, EAGAIN, ECONNRESET, EPIPE.

Benign faults (1-byte I/O, EINTR, EAGAIN bursts) must not change the outcome:
the handshake completes and bulk data arrives intact (sha256 end to end).
Fatal faults (a reset or broken pipe at any call of the handshake or of a
transfer) must be reported as ``S2NIOError`` with the right errno and the
transport's own exception chained; data delivered before the fault is a
prefix of what was sent - nothing silently lost, corrupted or duplicated.
"""

from __future__ import annotations

import errno
import os
import random

import pytest
from reliability_tools import (ClosedError, S2NIOError, assert_clean_failure, make_pair, negotiate_pair,
                               sha256, transfer)


def one_byte(transport, op):
    """Every read and write moves a single byte."""
    return 1


def eintr(transport, op):
    """Every other call is interrupted by a signal."""
    return InterruptedError(errno.EINTR, "interrupted system call") if transport.calls[op] % 2 else None


def eagain_bursts(transport, op):
    """Three would-blocks out of every four calls."""
    return BlockingIOError(errno.EAGAIN, "try again") if transport.calls[op] % 4 else None


def chaos(seed: int):
    """A seeded mix of all benign faults."""
    rng = random.Random(seed)

    def plan(transport, op):
        return rng.choice([None, 1, 7, 1000, InterruptedError(errno.EINTR, "interrupted"),
                           BlockingIOError(errno.EAGAIN, "try again")])
    return plan


BENIGN = {"one_byte": one_byte, "eintr": eintr, "eagain_bursts": eagain_bursts, "chaos": chaos(1)}


def fail_from(op: str, call: int, exc: OSError):
    """A plan that raises ``exc`` at the ``call``-th ``op`` and at every later one (a dead socket)."""
    def plan(transport, this_op):
        return exc if this_op == op and transport.calls[op] >= call else None
    return plan


FATAL = [("recv", ConnectionResetError(errno.ECONNRESET, "connection reset by peer")),
         ("send", BrokenPipeError(errno.EPIPE, "broken pipe")),
         ("send", ConnectionResetError(errno.ECONNRESET, "connection reset by peer"))]


def _connected_pair(configs, **plans):
    pair = negotiate_pair(make_pair(*configs, **plans))
    assert pair.ok, pair.errors
    return pair


@pytest.mark.parametrize("name", sorted(BENIGN))
def test_benign_faults_change_nothing(configs, name):
    """Handshake and bulk transfer both ways under benign faults on both sides: hashes match."""
    plan = BENIGN[name]
    pair = _connected_pair(configs, server_plan=plan, client_plan=plan)
    size = 20_000 if name == "one_byte" else 1 << 20
    for sender, receiver in ((pair.client, pair.server), (pair.server, pair.client)):
        data = os.urandom(size)
        received, sender_error, receiver_error = transfer(sender, receiver, data)
        assert (sender_error, receiver_error) == (None, None)
        assert sha256(received) == sha256(data)
    pair.close()


def test_interrupted_call_is_not_blamed_later(configs):
    """An EINTR that s2n retried must not be chained to a later, unrelated failure."""
    pair = _connected_pair(configs, server_plan=eintr, client_plan=eintr)
    pair.server_io.inner.close()  # the server's process dies: a close without close_notify
    with pytest.raises(ClosedError) as caught:
        pair.client.recv(100)
    assert not isinstance(caught.value.__cause__, InterruptedError), "stale EINTR chained to a close"
    assert caught.value.errno is None
    pair.close()


def _assert_fatal(error, exc: OSError) -> None:
    assert isinstance(error, S2NIOError), f"{type(error).__name__}: {error}"
    assert error.errno == exc.errno, error
    assert isinstance(error.__cause__, type(exc)), repr(error.__cause__)


@pytest.mark.parametrize("op,exc", FATAL, ids=lambda value: getattr(value, "strerror", value))
@pytest.mark.parametrize("side", ["server", "client"])
def test_fatal_fault_at_every_handshake_step(configs, side, op, exc):
    """A dead socket at each I/O call of the handshake (normal and 1-byte chunking)."""
    checked = 0
    for chunking in (None, one_byte):
        plans = {f"{side}_plan": chunking} if chunking else {}
        clean = _connected_pair(configs, **plans)
        calls = getattr(clean, f"{side}_io").calls[op]
        clean.close()
        for call in range(1, calls + 1, 7 if chunking else 1):
            def plan(transport, this_op, fatal=fail_from(op, call, exc)):
                return fatal(transport, this_op) or (chunking(transport, this_op) if chunking else None)
            pair = negotiate_pair(make_pair(*configs, **{f"{side}_plan": plan}))
            other = "client" if side == "server" else "server"
            if side in pair.errors:
                _assert_fatal(pair.errors[side], exc)
                checked += 1
            if other in pair.errors:
                assert_clean_failure(pair.errors[other])
            assert not pair.stalled
            pair.close()
    assert checked > 10


@pytest.mark.parametrize("faulty,op,exc", [("sender", *FATAL[1]), ("sender", *FATAL[2]), ("receiver", *FATAL[0])],
                         ids=["sender-EPIPE", "sender-ECONNRESET", "receiver-ECONNRESET"])
def test_fatal_fault_during_transfer(configs, faulty, op, exc):
    """A dead socket at each I/O call of a 256 KiB transfer: a prefix arrives and the failure is reported."""
    data = os.urandom(256 * 1024)
    outcomes = set()
    for call in range(1, 40):
        pair = _connected_pair(configs)
        transport = pair.client_io if faulty == "sender" else pair.server_io
        transport.calls = {"recv": 0, "send": 0}
        transport.plan = fail_from(op, call, exc)
        received, sender_error, receiver_error = transfer(pair.client, pair.server, data)
        assert received == data[:len(received)], "delivered bytes are not a prefix of the sent ones"
        failures = [error for error in (sender_error, receiver_error) if error is not None]
        if len(received) < len(data):
            assert failures, f"{len(data) - len(received)} bytes lost silently"
        faulted = sender_error if faulty == "sender" else receiver_error
        if faulted is not None:
            _assert_fatal(faulted, exc)
        outcomes.add(len(received) < len(data))
        pair.close()
    assert True in outcomes
