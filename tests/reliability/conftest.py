"""Fixtures for the reliability tests: a hang watchdog and ready-to-use config pairs."""

from __future__ import annotations

import faulthandler
import sys

import pytest

#: No single reliability test may run longer than this; a hang dumps every thread's stack and exits.
WATCHDOG_SECONDS = 240


@pytest.fixture(autouse=True)
def hang_watchdog():
    """Turn a hang (even one inside C with the GIL released) into a stack dump and a failed run."""
    faulthandler.dump_traceback_later(WATCHDOG_SECONDS, exit=True, file=sys.stderr)
    yield
    faulthandler.cancel_dump_traceback_later()


@pytest.fixture
def configs(server_config, client_config):
    """(server config, client config) for the test PKI: the client verifies 'localhost'."""
    return server_config(), client_config()


@pytest.fixture
def rsa_configs(rsa_pki):
    """(server config, client config) with RSA keys: fixed-size signatures, so every
    handshake of a pair puts the same number of bytes at the same offsets."""
    import s2npy

    return (s2npy.Config(certificates=[(rsa_pki.server.cert, rsa_pki.server.key)], trust=rsa_pki.ca.cert,
                         system_trust=False),
            s2npy.Config(trust=rsa_pki.ca.cert, system_trust=False))
