"""The ``s2npy`` command: demo, serve, connect, certs, matrix, version.

Every subcommand lives in its own module with ``add_arguments(parser)`` and
``run(args) -> exit status``. Errors the user can fix (a missing file, an
unknown policy, a port in use) end as one line on stderr and a non-zero
exit status, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from . import connect_cmd, demo, matrix, serve, versions
from .cliargs import CLIError
from .errors import S2NError
from .pki import KEY_TYPES, make_pki

EXIT_USAGE = 2


def add_certs_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("directory", type=Path, help="where to write the PEM files (created if missing)")
    parser.add_argument("--key-type", choices=KEY_TYPES, default="ecdsa", help="default: %(default)s")
    parser.add_argument("--san", action="append", help="server name or IP for the server certificate "
                        "(repeatable; default: localhost and 127.0.0.1)")


def run_certs(args: argparse.Namespace) -> int:
    """Write a throwaway PKI and say how to use it."""
    written = make_pki(args.key_type, args.san).write(args.directory)
    for name, path in written.items():
        print(f"{name:22} {path}")
    print(f"\ntry: s2npy serve 127.0.0.1:8443 --cert {written['server']} --key {written['server_key']} "
          f"--trust {written['ca']} --cert-auth optional")
    return 0


def run_version(args: argparse.Namespace) -> int:
    """Print the binding version, the s2n-tls source pin and the libcrypto."""
    for key, value in versions().items():
        print(f"{key}: {value}")
    return 0


COMMANDS = {
    "demo": (demo, "reproduce the founding case (cert auth optional vs Chromium) in memory"),
    "serve": (serve, "run an s2n TLS server: echo, HTTPS page or WebSocket echo"),
    "connect": (connect_cmd, "connect to a TLS server, print the negotiated facts and the trace"),
    "matrix": (matrix, "run a grid of in-memory handshakes and print a table"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="s2npy", description="s2n-tls from the command line: reproduce, "
                                     "trace and explain TLS handshakes.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module, summary) in COMMANDS.items():
        sub = commands.add_parser(name, help=summary, description=module.__doc__.split("\n\n")[0])
        module.add_arguments(sub)
        sub.set_defaults(func=module.run)
    certs = commands.add_parser("certs", help="write a throwaway PKI (CA, server and client leaves)",
                                description="Write a throwaway PKI: CA, server and client leaves, an untrusted "
                                "CA and client, an expired server certificate.")
    add_certs_arguments(certs)
    certs.set_defaults(func=run_certs)
    version = commands.add_parser("version", help="print versions of s2npy, s2n-tls and libcrypto",
                                  description="Print versions of s2npy, the s2n-tls source and libcrypto.")
    version.set_defaults(func=run_version)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        return 130
    except (CLIError, S2NError, OSError, ValueError) as exc:
        print(f"s2npy {args.command}: error: {describe_error(exc)}", file=sys.stderr)
        return EXIT_USAGE


def describe_error(exc: BaseException) -> str:
    """One line for an error the user can act on."""
    if isinstance(exc, OSError) and not isinstance(exc, S2NError) and exc.strerror:
        where = f" ({exc.filename})" if exc.filename else ""
        return f"{exc.strerror}{where}"
    return " ".join(str(exc).split())
