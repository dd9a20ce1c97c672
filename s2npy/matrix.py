"""``s2npy matrix``: a grid of in-memory handshakes, one per combination of settings.

Axes: server cert auth x client certificate (none / valid / untrusted) x
server security policy x client behaviour (``normal``, or ``abort`` = hang up
without an alert when asked for a certificate, as Chromium does for a
cross-origin ``wss://``). The grid comes from flags or a JSON/TOML file with
the same keys (``cert_auth``, ``client_cert``, ``policy``, ``behaviour``)::

    cert_auth = ["optional", "required"]
    behaviour = ["normal", "abort"]
"""

from __future__ import annotations

import argparse
import itertools
import json
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .cliargs import CLIError, existing_path, name_list
from .config import Config
from .experiment import Behaviour, HandshakeResult, handshake
from .pki import KEY_TYPES, TestPKI, make_pki

AXES = {
    "cert_auth": ["none", "optional", "required"],
    "client_cert": ["none", "valid", "untrusted"],
    "policy": ["default_tls13"],
    "behaviour": ["normal", "abort"],
}
BEHAVIOURS = {"normal": None, "abort": Behaviour(abort_at="CLIENT_CERT")}
COLUMNS = ("cert_auth", "client_cert", "policy", "behaviour", "outcome", "error", "last_message", "protocol",
           "cipher")


@dataclass(frozen=True)
class Cell:
    """One combination of the grid."""

    cert_auth: str
    client_cert: str
    policy: str
    behaviour: str

    def run(self, pki: TestPKI) -> HandshakeResult:
        server = Config(certificates=[(pki.server.cert, pki.server.key)], trust=pki.ca.cert, system_trust=False,
                        cert_auth=self.cert_auth, policy=self.policy)
        identity = {"none": None, "valid": pki.client, "untrusted": pki.untrusted_client}[self.client_cert]
        client = Config(certificates=[(identity.cert, identity.key)] if identity else [], trust=pki.ca.cert,
                        system_trust=False)
        return handshake(server, client, server_name="localhost", client=BEHAVIOURS[self.behaviour])


def outcome_row(result: HandshakeResult) -> dict[str, Any]:
    """The table columns for one handshake: outcome, error, last message, protocol, cipher."""
    error = result.error
    facts = result.server.facts
    return {
        "outcome": "ok" if result.ok else "FAILED",
        "error": getattr(error, "name", None) or (type(error).__name__ if error else ""),
        "side": getattr(error, "mode", "") or "",
        "last_message": getattr(error, "last_message", None) or (facts.last_message if facts else ""),
        "protocol": facts.protocol if facts else "",
        "cipher": facts.cipher if facts else "",
        "diagnosis": error.diagnosis.cause if getattr(error, "diagnosis", None) else "",
    }


def format_table(rows: list[dict[str, Any]], columns: tuple[str, ...]) -> str:
    """A plain-text table with a header line; None shows as '-'."""
    cells = [[str(row.get(column) or "-") for column in columns] for row in rows]
    widths = [max(len(column), *(len(line[i]) for line in cells)) for i, column in enumerate(columns)]
    lines = ["  ".join(column.ljust(width) for column, width in zip(columns, widths))]
    lines += ["  ".join(value.ljust(width) for value, width in zip(line, widths)) for line in cells]
    return "\n".join(line.rstrip() for line in lines)


def load_grid(path: Path) -> dict[str, list[str]]:
    """Axes from a JSON or TOML file (by extension); unknown keys are an error."""
    text = path.read_text()
    try:
        data = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        raise CLIError(f"cannot parse grid file {str(path)!r}: {exc}") from exc
    unknown = set(data) - set(AXES)
    if unknown:
        raise CLIError(f"grid file {str(path)!r}: unknown keys {sorted(unknown)}; use {', '.join(AXES)}")
    return {key: [str(value) for value in (values if isinstance(values, list) else [values])]
            for key, values in data.items()}


def build_grid(args: argparse.Namespace) -> list[Cell]:
    """Defaults, overridden by the file, overridden by flags; values checked."""
    axes = dict(AXES)
    if args.grid:
        axes.update(load_grid(args.grid))
    axes.update({key: getattr(args, key) for key in AXES if getattr(args, key)})
    for key, allowed in (("client_cert", AXES["client_cert"]), ("behaviour", list(BEHAVIOURS))):
        bad = [value for value in axes[key] if value not in allowed]
        if bad:
            raise CLIError(f"unknown {key} {bad[0]!r}: use one of {', '.join(allowed)}")
    return [Cell(*values) for values in itertools.product(*(axes[key] for key in AXES))]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--grid", type=existing_path, help="JSON or TOML file with the axes (keys as the flags)")
    parser.add_argument("--cert-auth", dest="cert_auth", type=name_list, help="e.g. none,optional,required")
    parser.add_argument("--client-cert", dest="client_cert", type=name_list, help="subset of none,valid,untrusted")
    parser.add_argument("--policy", type=name_list, help="server security policies, e.g. default_tls13,20190801")
    parser.add_argument("--behaviour", type=name_list, help="subset of normal,abort (hang up at CertificateRequest)")
    parser.add_argument("--key-type", choices=KEY_TYPES, default="ecdsa", help="test PKI key type")
    parser.add_argument("--json", metavar="FILE", help="also write the rows as JSON to FILE ('-' for stdout only)")


def run(args: argparse.Namespace) -> int:
    """Run every cell and print the table; exit 0 even when cells fail (failures are results)."""
    pki = make_pki(args.key_type)
    rows = [{**vars(cell), **outcome_row(cell.run(pki))} for cell in build_grid(args)]
    if args.json == "-":
        print(json.dumps(rows, indent=2))
        return 0
    print(format_table(rows, COLUMNS))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")
    return 0
