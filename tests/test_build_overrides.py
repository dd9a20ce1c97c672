"""The build's escape hatches really build working modules (README: "Building against other ...").

Each test copies the sources to a temporary tree, builds the extension there with an
override, and runs a handshake with the result in a fresh interpreter:
``S2NPY_S2N_PREFIX`` (an installed s2n-tls, made here from the default build's static
libraries) and ``S2NPY_LIBCRYPTO=system`` (s2n-tls rebuilt against the system OpenSSL).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
HANDSHAKE = """
import s2npy
from s2npy.pki import make_pki
pki = make_pki()
result = s2npy.handshake(s2npy.Config(certificates=[(pki.server.cert, pki.server.key)]),
                         s2npy.Config(trust=pki.ca.cert, system_trust=False), server_name="localhost")
assert result.ok, result.error
print(s2npy.versions()["libcrypto"], "|", s2npy.versions()["s2n_source"])
"""


def _source_tree(tmp_path: Path) -> Path:
    tree = tmp_path / "tree"
    shutil.copytree(ROOT / "s2npy", tree / "s2npy", ignore=shutil.ignore_patterns("*.so", "*.o", "_s2n.c",
                                                                                  "__pycache__"))
    (tree / "vendor").mkdir()
    shutil.copy(ROOT / "vendor" / "awscrt-pin.json", tree / "vendor")
    shutil.copy(ROOT / "build_s2n.py", tree)
    return tree


def _build_and_run(tree: Path, **overrides: str) -> str:
    env = {**os.environ, **overrides}
    build = subprocess.run([sys.executable, "build_s2n.py"], cwd=tree, env=env, capture_output=True, text=True,
                           timeout=600)
    assert build.returncode == 0, build.stderr[-2000:]
    run = subprocess.run([sys.executable, "-c", HANDSHAKE], cwd=tree, capture_output=True, text=True,
                         timeout=120, env={**os.environ, "PYTHONPATH": str(tree)})
    assert run.returncode == 0, run.stderr[-2000:]
    return run.stdout


def _default_build_prefixes() -> tuple[Path, Path]:
    install = ROOT / "vendor" / "cache" / "install"
    return next(install.glob("s2n-tls-*")), next(install.glob("aws-lc-*"))


@pytest.mark.slow
def test_installed_prefix_override(tmp_path):
    s2n_prefix, aws_lc_prefix = _default_build_prefixes()
    prefix = tmp_path / "prefix"
    shutil.copytree(s2n_prefix / "include", prefix / "include")
    shutil.copytree(aws_lc_prefix / "include" / "openssl", prefix / "include" / "openssl")
    (prefix / "lib").mkdir()
    shutil.copy(s2n_prefix / "lib" / "libs2n.a", prefix / "lib")
    shutil.copy(aws_lc_prefix / "lib" / "libcrypto.a", prefix / "lib")
    output = _build_and_run(_source_tree(tmp_path), S2NPY_S2N_PREFIX=str(prefix))
    assert "AWS-LC" in output and f"installed prefix {prefix}" in output


@pytest.mark.slow
def test_system_openssl_override(tmp_path):
    tree = _source_tree(tmp_path)
    downloads = tree / "vendor" / "cache" / "downloads"
    shutil.copytree(ROOT / "vendor" / "cache" / "downloads", downloads)  # reuse the verified sdist
    output = _build_and_run(tree, S2NPY_LIBCRYPTO="system")
    assert output.startswith("OpenSSL 3")


@pytest.mark.slow
def test_local_source_tree_override(tmp_path):
    source = next((ROOT / "vendor" / "cache" / "src").glob("awscrt-*")) / "crt" / "s2n"
    output = _build_and_run(_source_tree(tmp_path), S2NPY_S2N_SOURCE=str(source), S2NPY_LIBCRYPTO="system")
    assert f"local source tree {source}" in output
