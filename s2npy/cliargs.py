"""Argument types and helpers shared by the ``s2npy`` subcommands."""

from __future__ import annotations

import argparse
import ipaddress
from pathlib import Path


class CLIError(Exception):
    """A problem with the user's input: printed as one line, exit status 2."""


def address(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[v6]:PORT`` too) -> (host, port)."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


def name_list(text: str) -> list[str]:
    """A comma-separated list: ``h2,http/1.1`` -> ``["h2", "http/1.1"]``."""
    return [item.strip() for item in text.split(",") if item.strip()]


def existing_path(text: str) -> Path:
    """A file or directory that must exist (checked at parse time: one readable line)."""
    path = Path(text)
    if not path.exists():
        raise argparse.ArgumentTypeError(f"no such file or directory: {text!r}")
    return path


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def is_ip(host: str) -> bool:
    """True for an IP literal (no SNI is sent for those)."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def add_tls_arguments(parser: argparse.ArgumentParser, *, side: str) -> None:
    """The options every TLS endpoint has: certificate, key, trust, policy, ALPN, trace."""
    what = "server certificate chain" if side == "server" else "client certificate chain (for mutual TLS)"
    parser.add_argument("--cert", type=existing_path, help=f"PEM {what}")
    parser.add_argument("--key", type=existing_path, help="PEM private key of --cert")
    parser.add_argument("--trust", type=existing_path, action="append",
                        help="PEM CA file or hashed directory to trust (repeatable)")
    parser.add_argument("--policy", default="default_tls13", help="s2n security policy (default: %(default)s)")
    parser.add_argument("--alpn", type=name_list, default=[], help="ALPN protocols, comma-separated")
    parser.add_argument("--trace", choices=("none", "text", "json"), default="text" if side == "client" else "none",
                        help="print handshake traces as a text ladder or JSON lines (default: %(default)s)")
    parser.add_argument("--keylog", help="append TLS secrets to this NSS key log file (debugging only)")


def certificate_pairs(args: argparse.Namespace) -> list[tuple[Path, Path]]:
    """``[(cert, key)]`` from --cert/--key, refusing one without the other."""
    if (args.cert is None) != (args.key is None):
        raise CLIError("--cert and --key go together")
    return [(args.cert, args.key)] if args.cert else []
