from __future__ import annotations

import json

import pytest

from oddoctor.snapshot import SCHEMA_VERSION, Snapshot, SnapshotError, load_snapshot
from oddoctor.units import format_bytes, parse_size
from tests.helpers import SNAPSHOTS


@pytest.mark.parametrize("path", sorted(SNAPSHOTS.glob("*.json")), ids=lambda p: p.stem)
def test_every_fixture_loads_and_round_trips(path):
    snap = load_snapshot(path)
    again = Snapshot.from_dict(json.loads(snap.to_json()))
    assert again == snap


def test_unknown_keys_are_ignored_and_missing_ones_read_as_unknown():
    snap = Snapshot.from_dict({"schema_version": SCHEMA_VERSION, "from_the_future": 1, "nvml": {"available": True}})
    assert snap.nvml.available is True
    # Unknown is not "no": nothing said about GPUs, TensorFlow or the platform reads as null, not [] / False.
    assert snap.nvml.gpus is None and snap.tensorflow.installed is None and snap.platform.is_wsl is None
    assert snap.python.bits is None and snap.packages is None and snap.hardware.pci_nvidia is None


def test_empty_and_false_stay_distinct_from_unknown():
    snap = Snapshot.from_dict({"schema_version": SCHEMA_VERSION, "nvml": {"available": True, "gpus": []},
                               "tensorflow": {"installed": False}, "hardware": {"pci_nvidia": []}})
    assert snap.nvml.gpus == [] and snap.tensorflow.installed is False and snap.hardware.pci_nvidia == []
    again = Snapshot.from_dict(json.loads(snap.to_json()))
    assert again.nvml.gpus == [] and again.tensorflow.gpus is None


def test_v1_snapshot_is_upgraded_with_its_unknowns_marked():
    v1 = {"schema_version": 1, "platform": {"system": "Linux", "distro": ""},
          "nvml": {"available": False, "error": "NVMLError_LibraryNotFound: NVML Shared Library Not Found", "gpus": []},
          "cuda_libs": {"searched": [], "cudart": [], "cudnn": []},
          "tensorflow": {"installed": True, "version": "2.4.0", "importable": False, "build_info": {}, "gpus": []},
          "probe_errors": ["could not collect acme (plugin acme_plugin): RuntimeError: boom", "something else"]}
    snap = Snapshot.from_dict(v1)
    assert snap.schema_version == SCHEMA_VERSION
    assert snap.platform.distro is None  # "" meant "could not read /etc/os-release"
    assert snap.nvml.gpus is None  # NVML failed: the GPU list is unknown, not empty
    assert snap.cuda_libs.searched is None and snap.cuda_libs.cudart is None
    assert snap.tensorflow.build_info is None and snap.tensorflow.gpus is None
    assert [(e.fact, e.error[:17]) for e in snap.probe_errors] == [("extra.acme", "could not collect"),
                                                                   ("unknown", "something else")]
    assert snap.why_unknown("extra.acme").endswith("boom")


def test_v1_collected_snapshot_keeps_what_it_knew():
    v1 = {"schema_version": 1, "nvml": {"available": True, "driver_version": "535.104.05", "gpus": []},
          "cuda_libs": {"searched": ["/usr/lib"], "cudart": [], "cudnn": []},
          "tensorflow": {"installed": True, "importable": True, "gpus": [], "build_info": {"is_cuda_build": True}}}
    snap = Snapshot.from_dict(v1)
    assert snap.nvml.gpus == [] and snap.cuda_libs.cudart == [] and snap.tensorflow.gpus == []
    assert snap.tensorflow.build_info == {"is_cuda_build": True}


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


def test_shipped_snapshot_schema_matches_the_dataclasses():
    from oddoctor.snapshot import json_schema
    from tests.helpers import REPO

    shipped = json.loads((REPO / "oddoctor" / "schemas" / "snapshot.schema.json").read_text(encoding="utf-8"))
    assert shipped == json_schema(), "regenerate: python -c 'from oddoctor.snapshot import json_schema ...'"


def test_collected_snapshot_validates_against_the_shipped_schema():
    import jsonschema

    from tests.helpers import REPO

    schema = json.loads((REPO / "oddoctor" / "schemas" / "snapshot.schema.json").read_text(encoding="utf-8"))
    for path in sorted(SNAPSHOTS.glob("*.json")):
        jsonschema.validate(Snapshot.from_dict(json.loads(path.read_text())).to_dict(), schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"schema_version": 2, "nvml": {"gpus": "many"}}, schema)
