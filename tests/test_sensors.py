"""The landing sensor: a run per landing date whose files are new or changed, and only those."""

from __future__ import annotations

import os

import pytest
from dagster import RunRequest, SkipReason, build_sensor_context

from pipelines import sensors
from pipelines.sensors import landing_sensor


@pytest.fixture
def landing(tmp_path, monkeypatch):
    root = tmp_path / "landing"
    root.mkdir()
    monkeypatch.setenv("ONETRACK_LANDING_DIR", str(root))
    return root


def land(root, source: str, day: str, name: str, text: str = '{"order_id": "o1"}\n', mtime_ns: int = 0):
    folder = root / source / f"dt={day}"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text)
    if mtime_ns:
        os.utime(path, ns=(mtime_ns, mtime_ns))
    return path


def evaluate(cursor: str | None):
    """Evaluate the sensor once: ``(partition keys requested, run requests, new cursor)``."""
    context = build_sensor_context(cursor=cursor)
    result = landing_sensor(context)
    if isinstance(result, SkipReason):
        return [], [], context.cursor
    assert all(isinstance(r, RunRequest) for r in result)
    return [r.partition_key for r in result], result, context.cursor


def test_new_files_request_their_partition_once(landing):
    land(landing, "orders", "2026-11-01", "part-0001.jsonl")
    land(landing, "returns", "2026-11-01", "part-0001.jsonl")
    land(landing, "orders", "2026-11-02", "part-0001.jsonl")

    days, requests, cursor = evaluate(None)
    assert days == ["2026-11-01", "2026-11-02"]
    assert len({r.run_key for r in requests}) == 2

    # the same files again: nothing to do, cursor kept
    days, _, again = evaluate(cursor)
    assert days == [] and again == cursor


def test_a_late_file_in_an_old_folder_requests_only_that_date(landing):
    land(landing, "orders", "2026-11-01", "part-0001.jsonl")
    land(landing, "orders", "2026-11-02", "part-0001.jsonl")
    _, first, cursor = evaluate(None)

    land(landing, "returns", "2026-11-01", "part-0002.jsonl")  # late file, old date
    days, requests, cursor = evaluate(cursor)
    assert days == ["2026-11-01"]
    # a new run key: Dagster does not dedupe it against the first run of that date
    assert requests[0].run_key not in {r.run_key for r in first}
    assert evaluate(cursor)[0] == []


def test_a_replaced_file_requests_its_date_again(landing):
    path = land(landing, "ad_spend", "2026-11-03", "part-0001.csv", "a\n", mtime_ns=1_000_000_000)
    _, _, cursor = evaluate(None)

    land(landing, "ad_spend", "2026-11-03", path.name, "a,b\n", mtime_ns=2_000_000_000)
    assert evaluate(cursor)[0] == ["2026-11-03"]


def test_files_being_written_and_unknown_sources_are_ignored(landing):
    land(landing, "orders", "2026-11-01", "part-0001.jsonl")
    _, _, cursor = evaluate(None)

    land(landing, "orders", "2026-11-01", "_part-0002.jsonl.tmp")
    land(landing, "orders", "2026-11-01", ".part-0003.jsonl")
    land(landing, "not_a_source", "2026-11-01", "x.jsonl")
    assert evaluate(cursor)[0] == []


def test_a_date_that_is_not_a_partition_yet_is_requested_once_it_is(landing, monkeypatch):
    land(landing, "orders", "2026-11-01", "part-0001.jsonl")
    land(landing, "orders", "2026-11-02", "part-0001.jsonl")  # still today, say
    monkeypatch.setattr(sensors, "valid_partition_keys", lambda: {"2026-11-01"})
    days, _, cursor = evaluate(None)
    assert days == ["2026-11-01"]

    monkeypatch.setattr(sensors, "valid_partition_keys", lambda: {"2026-11-01", "2026-11-02"})
    days, _, cursor = evaluate(cursor)
    assert days == ["2026-11-02"]
    assert evaluate(cursor)[0] == []


def test_nothing_landed_is_a_skip(landing):
    context = build_sensor_context()
    assert isinstance(landing_sensor(context), SkipReason)
