"""build_s2n.py: clear messages when a tool, a download or an override is wrong.

These run the build helpers directly (no compile): each failure a user can cause must
end with a sentence saying what to install or set, not a CMake or pip stack trace.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def build_s2n(monkeypatch, tmp_path):
    spec = importlib.util.spec_from_file_location("build_s2n_under_test", ROOT / "build_s2n.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(module, "CACHE", tmp_path / "cache")
    return module


def test_missing_cmake_says_what_to_install(build_s2n, monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty directory: no cmake, no cc
    with pytest.raises(SystemExit) as info:
        build_s2n.cmake_build("s2n-tls", tmp_path, [])
    assert "`cmake` was not found on PATH" in str(info.value.code)
    assert "apt-get install cmake" in str(info.value.code)


def test_failed_download_names_the_escape_hatches(build_s2n, monkeypatch):
    pin = dict(build_s2n.load_pin(), version="0.0.0.404", filename="awscrt-0.0.0.404.tar.gz")
    with pytest.raises(SystemExit) as info:
        build_s2n.fetch_pinned_sdist(pin)
    message = str(info.value.code)
    assert "could not download awscrt==0.0.0.404" in message
    assert "S2NPY_S2N_PREFIX" in message and "S2NPY_S2N_SOURCE" in message


def test_checksum_mismatch_is_refused(build_s2n, monkeypatch):
    pin = build_s2n.load_pin()
    downloads = build_s2n.CACHE / "downloads"
    downloads.mkdir(parents=True)

    def fake_download(cmd, capture_output, text):
        (downloads / pin["filename"]).write_bytes(b"not the real sdist")
        return type("Result", (), {"returncode": 0, "stderr": ""})()

    monkeypatch.setattr(build_s2n.subprocess, "run", fake_download)
    with pytest.raises(SystemExit) as info:
        build_s2n.fetch_pinned_sdist(pin)
    assert "refusing to build from it" in str(info.value.code)
    assert not (downloads / pin["filename"]).exists()


def test_prefix_override_without_headers(build_s2n, monkeypatch, tmp_path):
    monkeypatch.setenv("S2NPY_S2N_PREFIX", str(tmp_path))
    with pytest.raises(SystemExit) as info:
        build_s2n.prepare_native_libs()
    assert "has no include/s2n.h" in str(info.value.code)


def test_unknown_libcrypto_choice(build_s2n, monkeypatch):
    monkeypatch.setenv("S2NPY_LIBCRYPTO", "boringssl")
    with pytest.raises(SystemExit) as info:
        build_s2n.prepare_native_libs()
    assert "use 'aws-lc' or 'system'" in str(info.value.code)


def test_pin_is_recorded_with_checksum():
    pin = json.loads((ROOT / "vendor" / "awscrt-pin.json").read_text())
    assert pin["package"] == "awscrt" and len(pin["sha256"]) == 64


def test_unknown_aws_lc_entropy_choice(build_s2n, monkeypatch, tmp_path):
    monkeypatch.setenv("S2NPY_AWS_LC_ENTROPY", "rdrand")
    with pytest.raises(SystemExit) as info:
        build_s2n.build_aws_lc(tmp_path)
    assert "use 'os' (default) or 'jitter'" in str(info.value.code)


def test_aws_lc_seeds_from_the_os_unless_jitter_is_asked_for(build_s2n, monkeypatch, tmp_path):
    """Different options are a different cache key, so switching rebuilds aws-lc (and s2n on it)."""
    options = []
    monkeypatch.setattr(build_s2n, "cmake_build", lambda name, source, given: options.append(given))
    build_s2n.build_aws_lc(tmp_path)
    monkeypatch.setenv("S2NPY_AWS_LC_ENTROPY", "jitter")
    build_s2n.build_aws_lc(tmp_path)
    assert "-DDISABLE_CPU_JITTER_ENTROPY=ON" in options[0]
    assert not [option for option in options[1] if "JITTER" in option]


def test_the_installed_build_links_no_cpu_jitter_collector():
    """The default build seeds aws-lc from the OS: its jitter entropy code (jent_*, ~30 ms of CPU at
    the first s2n_init) is not even linked, and versions() says which entropy the build uses."""
    import s2npy
    from s2npy import _s2n

    assert s2npy.versions()["libcrypto_build"] == "aws-lc (static, from the pin; entropy: os)"
    symbols = subprocess.run(["nm", _s2n.__file__], check=True, capture_output=True, text=True).stdout
    assert " s2n_init" in symbols  # the symbol table is there to search
    assert " jent_" not in symbols and "tree_jitter" not in symbols


def test_import_s2npy_leaves_heavy_modules_it_does_not_need_unimported():
    """Import time is measured in benchmarks/, not asserted here; what is asserted is that the two
    costs removed from it stay removed: s2n_init no longer collects jitter entropy (above), and
    Config's random ticket key uses os.urandom instead of importing secrets (hmac, hashlib and
    OpenSSL's _hashlib with it, ~3 ms)."""
    probe = ("import sys; before = set(sys.modules); import s2npy; "
             "print(sorted({'secrets', 'hmac', 'hashlib', '_hashlib'} & (set(sys.modules) - before)))")
    done = subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "[]"


def test_random_session_ticket_keys_differ_between_configs():
    """Two servers with random ticket keys cannot read each other's tickets: their keys differ."""
    import s2npy
    from s2npy.pki import make_pki

    pki = make_pki()
    client = s2npy.Config(trust=pki.ca.cert, system_trust=False, session_tickets=True)
    first, second = (s2npy.Config(certificates=[(pki.server.cert, pki.server.key)], session_tickets=True)
                     for _ in range(2))
    ticket = s2npy.handshake(first, client, server_name="localhost").client.session
    assert ticket
    resumed_on = {name: s2npy.handshake(server, client, server_name="localhost",
                                        client_session=ticket).client.facts.session_resumed
                  for name, server in (("first", first), ("second", second))}
    assert resumed_on == {"first": True, "second": False}
