"""Every setting SPEC marks *(config)*, read from environment variables.

One frozen dataclass so that pure functions can take the settings they need as plain values and
tests can build their own with ``OnetrackConfig(...)``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
BUSINESS_TZ = "Asia/Shanghai"


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    return default if raw in (None, "") else int(raw)


def _env_list(name: str, default: tuple[str, ...]) -> tuple[str, ...]:
    raw = os.environ.get(name)
    if raw in (None, ""):
        return default
    return tuple(part.strip() for part in raw.split(",") if part.strip())


def _env_path(name: str, default: str) -> str:
    """A root directory; local paths are made absolute, URIs (s3a://, hdfs://) kept as they are."""
    raw = os.environ.get(name) or default
    if "://" in raw:
        return raw.rstrip("/")
    return str((Path.cwd() / raw).resolve()) if not os.path.isabs(raw) else raw.rstrip("/")


@dataclass(frozen=True)
class OnetrackConfig:
    landing_dir: str = "data/landing"
    warehouse_dir: str = "data/warehouse"
    settlement_dir: str = "data/settlements"
    business_tz: str = BUSINESS_TZ
    attribution_window_days: int = 7
    refund_window_days: int = 30
    eligible_return_types: tuple[str, ...] = ("return_and_refund",)
    settlement_window_days: int = 15
    restatement_window_days: int = 30
    reexposure_window_days: int = 7
    # How far back (by paid date) the daily run looks for orders whose returns may still settle.
    # Refund eligibility needs refunded_at <= paid_at + refund window, so this bounds only how late
    # a return may land and still be settled; returns beyond it are reported by a check.
    ledger_lookback_days: int = 60
    partition_start: str = "2026-11-01"
    # VACUUM keeps the files versions of the last this-many hours need (Delta's default: 7 days).
    vacuum_retain_hours: int = 168
    # Tables the maintenance job compacts and vacuums at once (assets.maintenance).
    maintenance_parallelism: int = 4
    extra: dict = field(default_factory=dict)

    @classmethod
    def from_env(cls) -> "OnetrackConfig":
        return cls(
            landing_dir=_env_path("ONETRACK_LANDING_DIR", "data/landing"),
            warehouse_dir=_env_path("ONETRACK_WAREHOUSE_DIR", "data/warehouse"),
            settlement_dir=_env_path("ONETRACK_SETTLEMENT_DIR", "data/settlements"),
            attribution_window_days=_env_int("ONETRACK_ATTRIBUTION_WINDOW_DAYS", 7),
            refund_window_days=_env_int("ONETRACK_REFUND_WINDOW_DAYS", 30),
            eligible_return_types=_env_list("ONETRACK_ELIGIBLE_RETURN_TYPES", ("return_and_refund",)),
            settlement_window_days=_env_int("ONETRACK_SETTLEMENT_WINDOW_DAYS", 15),
            restatement_window_days=_env_int("ONETRACK_RESTATEMENT_WINDOW_DAYS", 30),
            reexposure_window_days=_env_int("ONETRACK_REEXPOSURE_WINDOW_DAYS", 7),
            ledger_lookback_days=_env_int("ONETRACK_LEDGER_LOOKBACK_DAYS", 60),
            partition_start=os.environ.get("ONETRACK_PARTITION_START", "2026-11-01"),
            vacuum_retain_hours=_env_int("ONETRACK_VACUUM_RETAIN_HOURS", 168),
            maintenance_parallelism=_env_int("ONETRACK_MAINTENANCE_PARALLELISM", 4),
            extra=json.loads(os.environ.get("ONETRACK_EXTRA", "{}")),
        )

    def table_path(self, layer: str, name: str) -> str:
        """Where a Delta table lives: ``<warehouse>/<layer>/<name>``."""
        return f"{self.warehouse_dir}/{layer}/{name}"
