"""README's Python examples run as written (blocks concatenated, in a fresh interpreter)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def test_readme_python_examples_run():
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert blocks, "README has no python examples"
    result = subprocess.run([sys.executable, "-c", "\n".join(blocks)], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    assert "TLSv1.3 TLS_AES_128_GCM_SHA256 b'HELLO'" in result.stdout
    assert "peer closed the connection without an alert" in result.stdout
