"""Benchmarks: s2npy vs a native C s2n program vs Python's ssl, in one run.

    python benchmarks/run.py [--smoke] [--rounds N] [--seconds S] [--json OUT] [--markdown OUT]

Every measurement runs in its own process (``native_bench`` for the C
contestant, ``py_bench.py`` for s2npy and ssl), contestants alternating in a
rotating order, for several rounds; the table shows medians, the min-max
spread and the ratios s2npy/native and s2npy/ssl. The machine is shared and
noisy: compare ratios within one run only. ``--smoke`` scales everything
down to check that every row works (CI), not to measure.

The C program is compiled here, against the same libs2n.a / libcrypto.a that
build_s2n.py built for the extension, into ``benchmarks/native_bench``;
results go to ``benchmarks/results/`` (both git-ignored).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import sysconfig
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench_args import at_least, positive_seconds

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
NATIVE = HERE / "native_bench"
NATIVE_LIBRARY = HERE / "native_bench.so"  # binding_floor.py's one-call, py-class and c-class variants
CONTESTANTS = ("s2npy", "native", "ssl")
TLS13_POLICY = "default_tls13"
TLS12_POLICY = "20240501"


@dataclass
class Row:
    """One workload: what each contestant runs and how the result reads."""

    key: str
    title: str
    unit: str
    workload: str
    params: dict = field(default_factory=dict)
    contestants: tuple = CONTESTANTS
    higher_is_better: bool = True
    once: bool = False  # memory rows: one round is enough (and they are slow)
    targets: dict = field(default_factory=dict)  # contestant -> minimum ratio s2npy/contestant


HANDSHAKE_TARGETS = {"native": 0.9, "ssl": 1.2}


def rows(smoke: bool, seconds: float) -> list[Row]:
    """The benchmark table, scaled down for ``--smoke``."""
    hs = {"seconds": seconds, "key": "ecdsa", "policy": TLS13_POLICY}
    mib = 1 if smoke else 1024  # ~0.5 s per bulk measurement: 256 MiB (~0.13 s) was too short for this noisy machine
    return [
        Row("hs_tls13_ecdsa", "Full handshakes, TLS 1.3, ECDSA P-256, socketpair", "hs/s", "handshake", hs,
            targets=HANDSHAKE_TARGETS),
        Row("hs_tls13_ecdsa_fresh", "Full handshakes, TLS 1.3, ECDSA P-256, socketpair, no connection reuse",
            "hs/s", "handshake", {**hs, "reuse": 0}, targets=HANDSHAKE_TARGETS),
        Row("hs_tls13_ecdsa_memory", "Full handshakes, TLS 1.3, ECDSA P-256, in memory", "hs/s",
            "memory_handshake", hs, targets=HANDSHAKE_TARGETS),
        Row("hs_tls13_rsa", "Full handshakes, TLS 1.3, RSA-2048", "hs/s", "handshake", {**hs, "key": "rsa"},
            targets=HANDSHAKE_TARGETS),
        Row("hs_tls12_ecdsa", "Full handshakes, TLS 1.2, ECDSA P-256", "hs/s", "handshake",
            {**hs, "policy": TLS12_POLICY}, targets=HANDSHAKE_TARGETS),
        Row("hs_tls13_resumed", "Resumed handshakes, TLS 1.3 session tickets", "hs/s", "handshake",
            {**hs, "resume": 1}, targets=HANDSHAKE_TARGETS),
        Row("bulk_64k", "Bulk one direction, 64 KiB writes", "MB/s", "bulk",
            {**hs, "chunk": 65536, "total": mib << 20}, targets={"native": 0.95, "ssl": 1.2}),
        Row("bulk_1k", "Bulk one direction, 1 KiB writes", "MB/s", "bulk",
            {**hs, "chunk": 1024, "total": (mib // 8 or 1) << 20}),
        Row("hs_two_threads", "Full handshakes in memory, two threads at once", "hs/s", "memory_handshake",
            {**hs, "pairs": 2}),
        Row("hs_traced", "Full handshakes, Connection(trace=True)", "hs/s", "handshake", {**hs, "trace": 1},
            contestants=("s2npy",)),
        Row("rss_idle", f"RSS per idle established connection ({20 if smoke else 1000} pairs)", "KiB",
            "idle_rss", {**hs, "count": 20 if smoke else 1000}, higher_is_better=False, once=True),
        Row("rss_growth", f"RSS growth over {200 if smoke else 20000} handshakes (after the first 10%)", "KiB",
            "rss_growth", {**hs, "count": 200 if smoke else 20000}, higher_is_better=False, once=True),
        Row("import", "Import time (s2npy / ssl)", "ms", "import", contestants=("s2npy", "ssl"),
            higher_is_better=False),
    ]


#: Ratios between rows of one contestant: (title, numerator row, denominator row, contestants, target).
DERIVED = [
    ("Two threads / one thread (in-memory handshakes)", "hs_two_threads", "hs_tls13_ecdsa_memory", CONTESTANTS, 1.6),
    ("Tracing on / off", "hs_traced", "hs_tls13_ecdsa", ("s2npy",), 0.7),
]


def build_native(library: bool = False) -> Path:
    """Compile native_bench.c against build_s2n's static libraries (when stale).

    ``library``: the shared library of binding_floor.py's one-call, py-class and c-class variants (see
    native_bench.c and native_class.c) instead of the program.
    """
    sys.path.insert(0, str(ROOT))
    import build_s2n

    libs = build_s2n.prepare_native_libs()
    sources = [HERE / "native_bench.c", *([HERE / "native_class.c"] if library else [])]
    target = NATIVE_LIBRARY if library else NATIVE
    inputs = [*sources, *map(Path, libs.extra_objects)]
    if target.exists() and target.stat().st_mtime >= max(p.stat().st_mtime for p in inputs):
        return target
    # The library is also a Python extension module (native_class.c): Python's headers, no libpython.
    shared = ["-shared", "-fPIC", "-DNATIVE_BENCH_LIBRARY", f"-I{sysconfig.get_paths()['include']}"] if library else []
    command = [os.environ.get("CC", "cc"), "-O2", *shared, "-o", str(target), *map(str, sources),
               *[f"-I{d}" for d in libs.include_dirs], *libs.extra_objects,
               *[f"-L{d}" for d in libs.library_dirs], *[f"-l{lib}" for lib in libs.libraries]]
    subprocess.run(command, check=True)
    return target


def write_pki() -> dict[str, dict[str, str]]:
    """ECDSA and RSA test PKIs as PEM files: key type -> {cert, key, ca}."""
    from s2npy.pki import make_pki

    files = {}
    for key_type in ("ecdsa", "rsa"):
        written = make_pki(key_type).write(RESULTS / f"pki-{key_type}")
        files[key_type] = {"cert": str(written["server"]), "key": str(written["server_key"]),
                           "ca": str(written["ca"])}
    return files


def row_options(row: Row, pki: dict) -> dict[str, str]:
    """A row's key=value options for native_bench and py_bench, its key type's PEM files included."""
    params = {**{k: v for k, v in row.params.items() if k != "key"}, **pki[row.params["key"]]}
    return {k: str(v) for k, v in params.items()}


def measure(contestant: str, row: Row, pki: dict) -> tuple[float, float | None]:
    """One measurement in a fresh process: (value, work per CPU-second or None)."""
    if row.workload == "import":
        module = "s2npy" if contestant == "s2npy" else "ssl"
        code = f"import time; t = time.perf_counter(); import {module}; print((time.perf_counter() - t) * 1e3)"
        output = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
        return float(output.stdout), None
    args = [row.workload, *[f"{k}={v}" for k, v in row_options(row, pki).items()]]
    if contestant == "native":
        command = [str(NATIVE), *args]
    else:
        command = [sys.executable, str(HERE / "py_bench.py"), contestant, *args]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise RuntimeError(f"{contestant} {row.key} failed:\n{done.stderr[-2000:]}")
    result = json.loads(done.stdout.splitlines()[-1])
    return float(result["value"]), result.get("per_cpu")


def rotated(items: tuple, round_index: int) -> tuple:
    """``items`` in the order of round ``round_index``: each round starts one further along, so
    that no contestant or variant always runs first (or right after another) on a drifting machine."""
    turn = round_index % len(items)
    return items[turn:] + items[:turn]


def compile_bytecode() -> None:
    """Write the bytecode of the s2npy that ``import s2npy`` finds, as installing a package does.

    Why: the import row times an import, not a compile. A .pyc older than its source (after an
    edit) is compiled again at every import and, under PYTHONDONTWRITEBYTECODE, never written
    back: s2npy.connection alone then adds ~11 ms to every sample.
    """
    import compileall
    import importlib.util

    spec = importlib.util.find_spec("s2npy")
    for location in (spec.submodule_search_locations or []) if spec else []:
        compileall.compile_dir(location, quiet=1)


def run(smoke: bool, rounds: int, seconds: float) -> dict:
    """Every row, every contestant, ``rounds`` times in rotating order; the raw samples."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    build_native()
    compile_bytecode()
    pki = write_pki()
    table = rows(smoke, seconds)
    samples: dict[str, dict[str, list[float]]] = {row.key: {c: [] for c in row.contestants} for row in table}
    per_cpu: dict[str, dict[str, list[float]]] = {row.key: {c: [] for c in row.contestants} for row in table}
    for round_index in range(rounds):
        order = rotated(CONTESTANTS, round_index)
        for row in table:
            if row.once and round_index > 0:
                continue
            for contestant in order:
                if contestant in row.contestants:
                    value, cpu_rate = measure(contestant, row, pki)
                    samples[row.key][contestant].append(value)
                    if cpu_rate is not None:
                        per_cpu[row.key][contestant].append(cpu_rate)
        print(f"round {round_index + 1}/{rounds} done", file=sys.stderr, flush=True)
    return {"rows": table, "samples": samples, "per_cpu": per_cpu}


def summarise(table: list[Row], samples: dict, per_cpu: dict) -> dict:
    """Medians, spreads, ratios and target verdicts, as JSON-ready data.

    ``cpu_ratios`` compare work per CPU-second (process CPU time, all threads):
    on a shared, busy machine they move far less than the wall-clock ratios.
    """
    out = []
    medians = {row.key: {c: statistics.median(v) for c, v in samples[row.key].items()} for row in table}
    for row in table:
        entry = {"key": row.key, "title": row.title, "unit": row.unit, "higher_is_better": row.higher_is_better,
                 "results": {c: {"median": medians[row.key][c], "min": min(v), "max": max(v), "samples": v}
                             for c, v in samples[row.key].items()},
                 "ratios": {}, "targets": {}, "cpu_ratios": {}}
        cpu_medians = {c: statistics.median(v) for c, v in per_cpu[row.key].items() if v}
        for c, v in per_cpu[row.key].items():
            if v:
                entry["results"][c]["per_cpu_median"] = cpu_medians[c]
                entry["results"][c]["per_cpu_samples"] = v
        for other in ("native", "ssl"):
            mine, theirs = medians[row.key].get("s2npy"), medians[row.key].get(other)
            if "s2npy" in cpu_medians and other in cpu_medians:
                entry["cpu_ratios"][other] = cpu_medians["s2npy"] / cpu_medians[other]
            if mine is not None and theirs:
                entry["ratios"][other] = mine / theirs
                if other in row.targets:
                    entry["targets"][other] = {"min": row.targets[other],
                                               "met": mine / theirs >= row.targets[other]}
        out.append(entry)
    derived = []
    for title, top, bottom, contestants, target in DERIVED:
        ratios = {c: medians[top][c] / medians[bottom][c] for c in contestants}
        derived.append({"title": title, "ratios": ratios, "target": target,
                        "met": ratios["s2npy"] >= target})
    return {"rows": out, "derived": derived}


def machine() -> dict:
    """What this ran on."""
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor())
    import ssl

    return {"nproc": os.cpu_count(), "cpu": model, "python": platform.python_version(),
            "ssl": ssl.OPENSSL_VERSION, "platform": platform.platform()}


def _number(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.2f}" if abs(value) >= 1 else f"{value:.3f}"


def _cell(result: dict | None) -> str:
    if result is None:
        return "-"
    return f"{_number(result['median'])} ({_number(result['min'])}-{_number(result['max'])})"


def _ratio(entry: dict, other: str) -> str:
    ratio = entry["ratios"].get(other)
    if ratio is None:
        return "-"
    target = entry["targets"].get(other)
    verdict = "" if target is None else f" {'met' if target['met'] else 'MISSED'} (>= {target['min']})"
    return f"{ratio:.2f}x{verdict}"


def _cpu_ratio(entry: dict, other: str) -> str:
    ratio = entry["cpu_ratios"].get(other)
    return "-" if ratio is None else f"{ratio:.2f}x"


def markdown(summary: dict, meta: dict) -> str:
    """The results as a Markdown table (medians, min-max, ratios) plus the derived ratios."""
    lines = [f"Machine: {meta['machine']['nproc']} cores, {meta['machine']['cpu']}, Python "
             f"{meta['machine']['python']}, {meta['machine']['ssl']}. Rounds: {meta['rounds']}, "
             f"{meta['seconds']} s per timed measurement{' (SMOKE: not a measurement)' if meta['smoke'] else ''}.",
             "", "Wall-clock medians (min-max); the last two columns compare work per CPU-second instead.", "",
             "| Workload | Unit | s2npy | native C s2n | stdlib ssl | s2npy / native | s2npy / ssl "
             "| per CPU-s: s2npy / native | s2npy / ssl |",
             "|---|---|---|---|---|---|---|---|---|"]
    for entry in summary["rows"]:
        results = entry["results"]
        unit = entry["unit"] + ("" if entry["higher_is_better"] else " (lower is better)")
        lines.append(f"| {entry['title']} | {unit} | {_cell(results.get('s2npy'))} | "
                     f"{_cell(results.get('native'))} | {_cell(results.get('ssl'))} | "
                     f"{_ratio(entry, 'native')} | {_ratio(entry, 'ssl')} | "
                     f"{_cpu_ratio(entry, 'native')} | {_cpu_ratio(entry, 'ssl')} |")
    lines += ["", "| Ratio within each contestant | s2npy | native C s2n | stdlib ssl | target (s2npy) |",
              "|---|---|---|---|---|"]
    for entry in summary["derived"]:
        cells = [f"{entry['ratios'][c]:.2f}x" if c in entry["ratios"] else "-" for c in CONTESTANTS]
        lines.append(f"| {entry['title']} | {' | '.join(cells)} | >= {entry['target']} "
                     f"{'met' if entry['met'] else 'MISSED'} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, one round: checks every row works")
    parser.add_argument("--rounds", type=at_least(1), help="rounds (default 5, smoke 1)")
    parser.add_argument("--seconds", type=positive_seconds, help="seconds per timed measurement (default 1.0, smoke 0.05)")
    parser.add_argument("--json", type=Path, help="write the results as JSON here")
    parser.add_argument("--markdown", type=Path, help="write the Markdown table here")
    args = parser.parse_args(argv)
    rounds = args.rounds if args.rounds is not None else 1 if args.smoke else 5
    seconds = args.seconds if args.seconds is not None else 0.05 if args.smoke else 1.0
    started = time.time()
    raw = run(args.smoke, rounds, seconds)
    meta = {"machine": machine(), "rounds": rounds, "seconds": seconds, "smoke": args.smoke,
            "command": " ".join([Path(sys.executable).name, *sys.argv]),
            "started": time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(started)),
            "duration_s": round(time.time() - started, 1)}
    summary = summarise(raw["rows"], raw["samples"], raw["per_cpu"])
    text = markdown(summary, meta)
    print(text)
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(started))
    json_path = args.json or RESULTS / f"{'smoke' if args.smoke else 'full'}-{stamp}.json"
    json_path.write_text(json.dumps({"meta": meta, **summary}, indent=2))
    if args.markdown:
        args.markdown.write_text(text)
    print(f"JSON: {json_path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
