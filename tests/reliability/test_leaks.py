"""Leaks: RSS growth over many handshake-and-close cycles, and valgrind memcheck of a short run.

Both run the mixed workload of leak_scenario.py (successes, certificate
failures, hostile bytes, traced handshakes, a raising callback) in a child.
"""

from __future__ import annotations

import json
import re
import shutil
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from reliability_tools import assert_survived, run_python

HERE = Path(__file__).parent
RSS_LIMIT_KIB = 5 * 1024
#: Allocations cffi makes once when the extension module is imported (never freed, by design).
ONE_TIME_INIT = ("b_init_cffi_1_0_external_module", "PyInit__s2n")
#: The binding's own shared objects: the cffi module (libs2n and aws-lc are linked into it) and the C data path.
BINDING_OBJECTS = ("_s2n", "_datapath")
#: CPython's bytecode loop: a frame of it means Python code, not the binding's C code, made the allocation.
PYTHON_BYTECODE = "_PyEval_EvalFrameDefault"


@pytest.fixture(scope="module")
def pem_dir(pki, tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("leak-pki")
    pki.write(directory)
    return directory


def _rss_run(pem_dir: Path, cycles: int, warmup: int) -> dict:
    process = run_python(f"import leak_scenario; leak_scenario.main({cycles}, {warmup})", timeout=600,
                         env={"PYTHONPATH": str(HERE), "S2NPY_PKI_DIR": str(pem_dir)})
    assert_survived(process)
    report = json.loads(process.stdout.strip().splitlines()[-1])
    print(f"RSS report: {report}")
    assert report["growth_kib"] < RSS_LIMIT_KIB, report
    return report


def test_rss_stable_short(pem_dir):
    """1,000 mixed handshake-and-close cycles after a warm-up: RSS grows less than 5 MB."""
    _rss_run(pem_dir, 1000, 300)


@pytest.mark.slow
def test_rss_stable_20000_cycles(pem_dir):
    """20,000 mixed handshake-and-close cycles after a warm-up: RSS grows less than 5 MB."""
    _rss_run(pem_dir, 20000, 1000)


def binding_errors(xml_text: str) -> list[str]:
    """valgrind errors made by the binding's own C code: a frame in one of BINDING_OBJECTS.

    The innermost binding frame must come before any Python bytecode frame: when the binding calls
    back into Python (a lazy import, a fallback method), what that Python code allocates belongs to
    the interpreter, which memcheck reports as "lost" for its compile and import caches. Leaks
    allocated once by cffi's module initialisation are not per-connection and are ignored too.
    """
    found = []
    for error in ET.fromstring(xml_text).findall("error"):
        frames = error.findall("stack/frame")
        objects = [frame.findtext("obj") or "" for frame in frames]
        functions = [frame.findtext("fn") or "?" for frame in frames]
        binding_frame = next((index for index, obj in enumerate(objects)
                              if any(name in obj for name in BINDING_OBJECTS)), None)
        if binding_frame is None or PYTHON_BYTECODE in functions[:binding_frame] \
                or any(fn in ONE_TIME_INIT for fn in functions):
            continue
        found.append(f"{error.findtext('kind')}: {' < '.join(functions[:12])}")
    return found


@pytest.mark.slow
def test_valgrind_memcheck(pem_dir, tmp_path):
    """memcheck over 10 mixed cycles: no leak or memory error attributed to the binding's frames."""
    assert shutil.which("valgrind"), "valgrind is required for this test"
    xml_file = tmp_path / "memcheck.xml"
    process = run_python("import leak_scenario; leak_scenario.main(10, 0)", timeout=600,
                         env={"PYTHONPATH": str(HERE), "S2NPY_PKI_DIR": str(pem_dir), "PYTHONMALLOC": "malloc"},
                         prefix=["valgrind", "--tool=memcheck", "--verbose", "--leak-check=full",
                                 "--show-leak-kinds=definite,indirect", "--num-callers=40",
                                 "--xml=yes", f"--xml-file={xml_file}"])
    assert_survived(process)
    xml_text = xml_file.read_text()
    total = xml_text.count("<error>")
    attributed = binding_errors(xml_text)
    print(f"valgrind: {total} errors in the process, {len(attributed)} attributed to the binding")
    # --verbose logs every object valgrind reads symbols from: proof that the traced process loaded the binding
    # (an error count alone cannot show it, since the one-time init leak is not reported on every run).
    loaded = set(re.findall(r"Reading syms from \S*/s2npy/(_\w+)\.", process.stderr))
    missing = set(BINDING_OBJECTS) - loaded
    assert not missing, f"valgrind never read {missing}: was the real interpreter traced?"
    assert attributed == [], "\n".join(attributed)


def test_binding_filter_sees_binding_frames():
    """The valgrind filter keeps errors made in _s2n or _datapath; it drops cffi's one-time init,
    other objects' errors, and what Python code run from a binding frame allocated."""
    def error(*frames):
        stack = "".join(f"<frame><fn>{fn}</fn><obj>{obj}</obj></frame>" for fn, obj in frames)
        return f"<error><kind>Leak_DefinitelyLost</kind><stack>{stack}</stack></error>"
    python = sys.executable
    xml_text = ("<valgrindoutput>" + error(("malloc", "vgpreload"), ("s2n_alloc", "/x/_s2n.so"))
                + error(("malloc", "vgpreload"), ("PyDict_New", python),
                        ("connection_core_init", "/x/_datapath.abi3.so"))
                + error(("malloc", "vgpreload"), ("b_init_cffi_1_0_external_module", "/x/_cffi_backend.so"),
                        ("PyInit__s2n", "/x/_s2n.so"))
                + error(("malloc", "vgpreload"), ("ste_new", python), (PYTHON_BYTECODE, python),
                        ("core_try_negotiate", "/x/_datapath.abi3.so"))
                + error(("malloc", "vgpreload"), ("PyDict_New", python)) + "</valgrindoutput>")
    assert binding_errors(xml_text) == ["Leak_DefinitelyLost: malloc < s2n_alloc",
                                        "Leak_DefinitelyLost: malloc < PyDict_New < connection_core_init"]
