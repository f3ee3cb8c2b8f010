from __future__ import annotations

import json

import pytest

from oddoctor.snapshot import SCHEMA_VERSION, Snapshot, SnapshotError, load_snapshot
from oddoctor.units import format_bytes, parse_size
from tests.conftest import SNAPSHOTS


@pytest.mark.parametrize("path", sorted(SNAPSHOTS.glob("*.json")), ids=lambda p: p.stem)
def test_every_fixture_loads_and_round_trips(path):
    snap = load_snapshot(path)
    again = Snapshot.from_dict(json.loads(snap.to_json()))
    assert again == snap


def test_unknown_keys_are_ignored_and_missing_ones_defaulted():
    snap = Snapshot.from_dict({"schema_version": SCHEMA_VERSION, "from_the_future": 1, "nvml": {"available": True}})
    assert snap.nvml.available is True and snap.nvml.gpus == [] and snap.tensorflow.installed is False


def test_write_is_atomic_and_leaves_no_temp_files(tmp_path):
    out = tmp_path / "sub" / "snap.json"
    Snapshot(hostname="h").write(out)
    assert load_snapshot(out).hostname == "h"
    assert [p.name for p in out.parent.iterdir()] == ["snap.json"]


def test_future_version_is_refused():
    with pytest.raises(SnapshotError, match="pip install -U oddoctor"):
        Snapshot.from_dict({"schema_version": SCHEMA_VERSION + 1})


@pytest.mark.parametrize(("text", "value"), [("8GiB", 8 * 1024**3), ("500MB", 500_000_000), ("1.5G", 1610612736),
                                             ("1024", 1024), ("2 gib", 2 * 1024**3)])
def test_parse_size(text, value):
    assert parse_size(text) == value


@pytest.mark.parametrize("text", ["", "lots", "-1G", "8XB"])
def test_parse_size_rejects(text):
    with pytest.raises(ValueError, match="cannot read size"):
        parse_size(text)


def test_format_bytes():
    assert format_bytes(None) == "unknown"
    assert format_bytes(512) == "512 B"
    assert format_bytes(8 * 1024**3) == "8.0 GiB"
