"""Every benchmark script still starts: its imports resolve and its options parse.

The benches import each other's harnesses (bench/scale.py uses bench/ingest.py's and
bench/stream.py's), and nothing else runs them in the suite; a renamed function broke
bench/scale.py once without any test noticing.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


@pytest.mark.parametrize("script", sorted(p.name for p in BENCH.glob("*.py")))
def test_the_script_starts_and_prints_its_usage(script: str) -> None:
    done = subprocess.run(
        [sys.executable, str(BENCH / script), "--help"], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "usage:" in done.stdout
