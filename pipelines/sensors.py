"""Landing-zone sensor: new or changed files in a ``dt`` folder request a run of that partition.

The cursor keeps a fingerprint (names, sizes, modification times) per landing date, so a
partition whose inputs did not change is not run again; late files in an old folder change its
fingerprint and request that partition again. A folder for a date that is not a partition yet
(today's, in Asia/Shanghai, until the day is over) is not recorded, so it is requested once its
partition exists. Files whose name starts with ``.`` or ``_`` are ignored: write landing files
under such a name and rename them when complete.
"""

import hashlib
import json
import os
from pathlib import Path

from dagster import RunRequest, SensorEvaluationContext, SkipReason, sensor

from assets.ingest.contracts import SOURCES
from pipelines.config import OnetrackConfig
from pipelines.jobs import daily_job
from pipelines.partitions import daily_partitions


def landing_fingerprints(landing_dir: str) -> dict[str, str]:
    """``{dt: sha256 of (source, file, size, mtime) of every file of that landing date}``."""
    entries: dict[str, list[str]] = {}
    root = Path(landing_dir)
    for source in SOURCES:
        base = root / source
        if not base.is_dir():
            continue
        for folder in sorted(base.glob("dt=*")):
            day = folder.name.removeprefix("dt=")
            for file in sorted(folder.iterdir()):
                if file.is_file() and not file.name.startswith((".", "_")):
                    stat = file.stat()
                    entry = f"{source}/{file.name}:{stat.st_size}:{stat.st_mtime_ns}"
                    entries.setdefault(day, []).append(entry)
    return {
        day: hashlib.sha256("\n".join(items).encode()).hexdigest() for day, items in sorted(entries.items())
    }


def valid_partition_keys() -> set[str]:
    """The landing dates that are partitions now (up to yesterday, Asia/Shanghai)."""
    return set(daily_partitions.get_partition_keys())


def changed_partitions(previous: dict[str, str], current: dict[str, str], valid: set[str]) -> list[str]:
    return [day for day, digest in sorted(current.items()) if day in valid and previous.get(day) != digest]


@sensor(
    job=daily_job,
    name="onetrack_landing_sensor",
    minimum_interval_seconds=int(os.environ.get("ONETRACK_SENSOR_INTERVAL_SECONDS", "60")),
    description="Requests a run for each landing date whose files are new or changed (late files included).",
)
def landing_sensor(context: SensorEvaluationContext):
    cfg = OnetrackConfig.from_env()
    previous = json.loads(context.cursor) if context.cursor else {}
    current = landing_fingerprints(cfg.landing_dir)
    valid = valid_partition_keys()
    days = changed_partitions(previous, current, valid)
    if not days:
        return SkipReason(f"no new or changed landing files under {cfg.landing_dir}")
    # Only dates that are partitions: a date not yet valid must still look new once it is.
    context.update_cursor(json.dumps({d: v for d, v in current.items() if d in valid}, sort_keys=True))
    return [RunRequest(run_key=f"{day}:{current[day][:16]}", partition_key=day) for day in days]
