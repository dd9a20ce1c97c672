"""Key logging of traced handshakes: NSS lines, file mode 0600, and only when asked."""

from __future__ import annotations

import re
import stat

import s2npy

NSS_LINE = re.compile(r"^[A-Z0-9_]+ [0-9a-f]{64} [0-9a-f]{64,}$")


def test_key_log_file_gets_nss_lines_with_mode_0600(server_config, client_config, tmp_path, monkeypatch):
    monkeypatch.delenv("SSLKEYLOGFILE", raising=False)
    path = tmp_path / "keys.log"
    result = s2npy.handshake(server_config(), client_config(key_log=str(path)), server_name="localhost",
                             trace=True)
    assert result.ok, result.error
    lines = path.read_text().splitlines()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert lines == result.client.trace.keylog_lines and all(NSS_LINE.match(line) for line in lines)
    assert {line.split()[0] for line in lines} >= {"CLIENT_HANDSHAKE_TRAFFIC_SECRET", "SERVER_TRAFFIC_SECRET_0"}
    assert result.server.trace.keylog_lines == []  # the server did not ask
    labels = [event.data["label"] for event in result.client.trace.events() if event.kind == "keylog"]
    assert labels == [line.split()[0] for line in lines]
    assert not any(line.split()[2] in result.client.trace.to_jsonl() for line in lines)  # secrets stay out


def test_sslkeylogfile_is_honoured(server_config, client_config, tmp_path, monkeypatch):
    path = tmp_path / "env-keys.log"
    monkeypatch.setenv("SSLKEYLOGFILE", str(path))
    result = s2npy.handshake(server_config(), client_config(), server_name="localhost", trace=True)
    assert result.ok and result.client.trace.keylog_lines and result.server.trace.keylog_lines
    both_sides = result.client.trace.keylog_lines + result.server.trace.keylog_lines
    assert sorted(path.read_text().splitlines()) == sorted(both_sides)  # both configs read the variable


def test_no_key_log_unless_asked(server_config, client_config, tmp_path, monkeypatch):
    monkeypatch.delenv("SSLKEYLOGFILE", raising=False)
    monkeypatch.chdir(tmp_path)
    result = s2npy.handshake(server_config(), client_config(), server_name="localhost", trace=True)
    assert result.ok
    assert result.client.trace.keylog_lines == result.server.trace.keylog_lines == []
    assert list(tmp_path.iterdir()) == []
