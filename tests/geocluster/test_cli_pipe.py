"""The CLI when its reader goes away (``geocluster ... | head``): quiet, no traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["datasets", "--workspace", "{ws}"], 141),  # as a tool killed by SIGPIPE (128 + 13)
        (["--version"], 0),  # argparse itself ignores a failed write of its messages
    ],
)
def test_closed_pipe_exits_quietly(tmp_path, args, code):
    args = [a.replace("{ws}", str(tmp_path / "ws")) for a in args]
    proc = subprocess.Popen(
        [sys.executable, "-m", "geocluster", *args],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    # the reader is gone before the CLI writes its first byte (it is still importing)
    proc.stdout.close()
    _, err = proc.communicate(timeout=120)
    assert err.decode() == ""  # no BrokenPipeError traceback, no "Exception ignored"
    assert proc.returncode == code
