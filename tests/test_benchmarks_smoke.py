"""The benchmark suite still runs: ``benchmarks/run.py --smoke`` produces every row (no timing checks)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))  # as for a script run from there: run.py imports bench_args
_SPEC = importlib.util.spec_from_file_location("benchmarks_run", ROOT / "benchmarks" / "run.py")
bench_run = importlib.util.module_from_spec(_SPEC)
sys.modules[_SPEC.name] = bench_run  # dataclasses look their module up
_SPEC.loader.exec_module(bench_run)


def test_smoke_run_produces_every_row(tmp_path):
    out = tmp_path / "smoke.json"
    subprocess.run([sys.executable, str(ROOT / "benchmarks" / "run.py"), "--smoke", "--json", str(out)],
                   check=True, capture_output=True, timeout=120)
    report = json.loads(out.read_text())
    expected = bench_run.rows(smoke=True, seconds=0.05)
    assert [entry["key"] for entry in report["rows"]] == [row.key for row in expected]
    for entry, row in zip(report["rows"], expected):
        assert set(entry["results"]) == set(row.contestants), entry["key"]
        assert all(result["median"] >= 0 for result in entry["results"].values()), entry["key"]
    assert {entry["title"] for entry in report["derived"]} == {title for title, *_ in bench_run.DERIVED}
    assert report["meta"]["machine"]["nproc"] >= 1


HANDSHAKE_FLOOR_VARIANTS = {"connection", "raw", "raw-gil", "raw+16us", "py-class", "c-class", "one-call", "native"}


@pytest.mark.parametrize("arguments, variants, unit", [
    (["--workload", "handshake"], HANDSHAKE_FLOOR_VARIANTS, "hs_per_s"),
    # resumed: the raw variants set the primed session; native_bench.so checks that its clients resumed
    (["--row", "hs_tls13_resumed"], HANDSHAKE_FLOOR_VARIANTS, "hs_per_s"),
    (["--workload", "bulk"], {"connection", "raw"}, "mb_per_s"),
])
def test_binding_floor_diagnostic_runs(arguments, variants, unit):
    """benchmarks/binding_floor.py measures every variant (tiny run: the numbers mean nothing)."""
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "binding_floor.py"), *arguments,
                           "--rounds", "1", "--seconds", "0.05"], check=True, capture_output=True, text=True,
                          timeout=120)
    report = json.loads(done.stdout)
    assert set(report) == variants
    assert all(entry[unit] > 0 for entry in report.values())
    assert report["raw"]["ratio_to_raw"] == 1.0
    if "native" in report:
        assert report["native"]["ratio_to_native"] == 1.0


@pytest.mark.parametrize("row", [[], ["--row", "hs_tls12_ecdsa"]])
def test_handshake_phases_diagnostic_times_every_phase_of_every_variant(row):
    """benchmarks/handshake_phases.py: one row per phase, a time in each variant's column
    (native_bench's phases must carry the Python side's names, or the table cannot be made)."""
    script = ROOT / "benchmarks" / "handshake_phases.py"
    done = subprocess.run([sys.executable, str(script), "--rounds", "1", "--count", "40", *row], check=True,
                          capture_output=True, text=True, timeout=120)
    header, _, *rows = done.stdout.strip().splitlines()
    spec = importlib.util.spec_from_file_location("handshake_phases", script)
    phases = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(phases)
    assert header == "| phase (us) | native | s2npy | raw-gil | ssl | c-class |"
    assert [row.split(" | ")[0].lstrip("| ") for row in rows] == ["per handshake", *(p[0] for p in phases.PHASES)]
    # A phase within one thread takes time. One between the threads (hand-over to the server's wake,
    # say) can come out negative in a run this short: a thread preempted just before its stamp.
    one_thread = {name for name, start, end in phases.PHASES if start[0] == end[0]} | {"per handshake"}
    assert len(one_thread) == 10
    for row in rows:
        name, *cells = row.strip("| ").split(" | ")
        assert all(float(cell) > 0 for cell in cells) if name in one_thread else len(cells) == 5, row


def test_asyncio_benchmark_smoke_run_measures_both_servers():
    """benchmarks/bench_aio.py --smoke: every workload against both servers, each served requests."""
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_aio.py"), "--smoke"], check=True,
                          capture_output=True, text=True, timeout=120)
    rows = [line.split() for line in done.stdout.splitlines() if line.startswith(("echo ", "connect "))]
    assert sorted((row[0], row[1]) for row in rows) == [("connect", "s2npy"), ("connect", "ssl"),
                                                         ("echo", "s2npy"), ("echo", "ssl")]
    assert all(float(row[2]) > 0 for row in rows)


@pytest.mark.parametrize("script, args, message", [
    ("handshake_phases.py", ["--count", "5"], "argument --count: must be at least 20, not 5"),
    ("handshake_phases.py", ["--rounds", "0"], "argument --rounds: must be at least 1, not 0"),
    ("handshake_phases.py", ["--variants", "native,nope"], "unknown variants ['nope']"),
    ("handshake_phases.py", ["--row", "hs_tls13_resumed"], "argument --row: invalid choice: 'hs_tls13_resumed'"),
    ("binding_floor.py", ["--rounds", "0"], "argument --rounds: must be at least 1, not 0"),
    ("binding_floor.py", ["--seconds", "0"], "argument --seconds: must be more than 0 seconds, not 0"),
    ("binding_floor.py", ["--row", "hs_tls13_ecdsa_memory"], "argument --row: invalid choice: 'hs_tls13_ecdsa_memory'"),
    ("binding_floor.py", ["--workload", "bulk", "--row", "hs_tls13_rsa"], "--row picks a handshake row"),
    ("run.py", ["--rounds", "0"], "argument --rounds: must be at least 1, not 0"),
    ("run.py", ["--seconds", "-1"], "argument --seconds: must be more than 0 seconds, not -1"),
    ("run.py", ["--seconds", "soon"], "argument --seconds: 'soon' is not a number of seconds"),
    ("bench_aio.py", ["--connections", "0"], "argument --connections: must be at least 1, not 0"),
    ("bench_aio.py", ["--size", "1.5"], "argument --size: '1.5' is not a whole number"),
    ("bench_aio.py", ["--seconds", "nan"], "argument --seconds: must be more than 0 seconds, not nan"),
    ("py_bench.py", ["s2npy", "handshake", "seconds=1"], "missing cert=PEM-FILE, key=PEM-FILE, ca=PEM-FILE"),
    ("py_bench.py", ["ssl", "bulk", "cert=a", "key=b", "ca=c", "chunk=0"], "chunk: must be at least 1, not 0"),
    ("py_bench.py", ["s2npy", "handshake", "cert=a", "key=b", "ca=c", "rounds=3"], "'rounds=3' is not key=value"),
])
def test_benchmark_scripts_refuse_numbers_that_measure_nothing(script, args, message):
    """A usage error (exit 2) naming the argument, before anything runs: not a default run in its
    place (run.py took --rounds 0 for 5) nor a traceback after the measurements."""
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), *args],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert message in done.stderr


@pytest.mark.parametrize("args, message", [
    (["seconds=1"], "cert=, key= and ca= (PEM files) are required"),
    (["seconds=0"], "seconds=0: want a number of seconds above 0"),
    (["pairs=9"], "pairs=9: want a whole number from 1 to 8"),
    (["count=1.5"], "count=1.5: want a whole number from 1 to 10000000"),
    (["rounds=3"], "rounds=3: want a key of cert, key, ca"),
    (["seconds"], "seconds: want key=value"),
])
def test_native_bench_refuses_keys_that_measure_nothing(args, message):
    """native_bench read bad numbers as 0 (seconds=x ran no handshake and reported 0/s)."""
    done = subprocess.run([str(bench_run.build_native()), "handshake", *args], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 2
    assert message in done.stderr


def test_native_handshake_phases_refuses_a_count_without_room_for_its_warm_up():
    pki = bench_run.write_pki()["ecdsa"]
    done = subprocess.run([str(bench_run.build_native()), "handshake_phases",
                           *[f"{key}={value}" for key, value in pki.items()], "count=5"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "count=5: want at least 20" in done.stderr
