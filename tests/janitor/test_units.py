"""Pure pieces: the EMF document shape."""

from __future__ import annotations

import io
import json

import pytest

from janitor.emf_lines import EmfWriter, emf_line


def test_emf_line_shape() -> None:
    line = emf_line(
        "Ns",
        "janitor",
        {"Task": "retention"},
        {"stocktrack_janitor_duration_seconds": (1.5, "Seconds")},
        1_000,
    )
    assert line.startswith('{"_aws"')
    doc = json.loads(line)
    assert doc["_aws"]["CloudWatchMetrics"][0] == {
        "Namespace": "Ns",
        "Dimensions": [["Service", "Task"]],
        "Metrics": [{"Name": "stocktrack_janitor_duration_seconds", "Unit": "Seconds"}],
    }
    assert doc["Task"] == "retention" and doc["stocktrack_janitor_duration_seconds"] == 1.5
    with pytest.raises(ValueError, match="unit"):
        emf_line("Ns", "janitor", {}, {"x": (1, "Furlongs")}, 0)


def test_emf_writer_skips_empty_and_writes_one_line() -> None:
    out = io.StringIO()
    writer = EmfWriter("Ns", out=out, clock=lambda: 2.0)
    writer.emit({"Task": "vacuum"}, {})
    writer.emit({"Task": "vacuum"}, {"n": (3, "Count")})
    lines = out.getvalue().splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["_aws"]["Timestamp"] == 2000


def test_emf_writer_writes_nothing_when_disabled(monkeypatch: pytest.MonkeyPatch) -> None:
    out = io.StringIO()
    EmfWriter("Ns", out=out, enabled=False).emit({"Task": "vacuum"}, {"n": (3, "Count")})
    assert out.getvalue() == ""
    from janitor.app import create_app
    from janitor.settings import JanitorSettings

    monkeypatch.delenv("EMF_ENABLED", raising=False)
    assert create_app(JanitorSettings()).emf.enabled is False
    monkeypatch.setenv("EMF_ENABLED", "true")
    assert create_app(JanitorSettings()).emf.enabled is True
