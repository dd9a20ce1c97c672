"""build_s2n.py: clear messages when a tool, a download or an override is wrong.

These run the build helpers directly (no compile): each failure a user can cause must
end with a sentence saying what to install or set, not a CMake or pip stack trace.
"""

from __future__ import annotations

import importlib.util
import json
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
