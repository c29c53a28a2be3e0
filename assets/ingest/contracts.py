"""The landing contract of SPEC §2 as data: one ``SourceContract`` per source.

Validation (``assets.ingest.validate``) is generated from these declarations, so a rule lives in
exactly one place and its id (``<field>:<check>``, see docs/DESIGN.md) is derived from it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pyspark.sql import Column
from pyspark.sql import functions as F

ORDER_STATUSES = ("paid", "shipped", "delivered", "completed", "cancelled")
POOLS = ("ad", "organic")
RETURN_TYPES = ("refund_only", "return_and_refund")
REASON_CODES = (
    "found_cheaper",
    "quality_issue",
    "not_as_described",
    "wrong_item",
    "late_delivery",
    "changed_mind",
    "other",
)
RETURN_STATUSES = ("requested", "approved", "rejected", "refunded", "cancelled")
EVENT_TYPES = ("impression", "click")
PLACEMENTS = ("feed", "live", "search", "mall")


@dataclass(frozen=True)
class Field:
    """One landing field. ``kind``: string, int, decimal, timestamp or date."""

    name: str
    kind: str = "string"
    required: bool = True
    enum: tuple[str, ...] | None = None
    # A bound on the typed value: (column of typed values) -> Column that is True when it holds.
    check: object = None


@dataclass(frozen=True)
class Consistency:
    """A cross-field rule; ``holds`` takes the typed row's columns and returns a boolean Column."""

    rule: str
    holds: object


STATS_COLUMNS_PROPERTY = "delta.dataSkippingStatsColumns"


@dataclass(frozen=True)
class SourceContract:
    name: str
    fmt: str  # jsonl, csv, parquet
    suffixes: tuple[str, ...]
    fields: tuple[Field, ...]
    consistency: tuple[Consistency, ...] = ()
    # Business key and the order that makes a version "latest" (SPEC §2).
    key: tuple[str, ...] = ()
    # traffic: a repeated event_id is a duplicate; others: every field equal.
    duplicate_key: tuple[str, ...] | None = None
    derived: dict = field(default_factory=dict)
    # The field saying when the record happened. A record cannot land before it happened, so an
    # exact repeat of it can only have been accepted in landing partitions on or after that
    # business day: this bounds how far back duplicates are looked for (see DESIGN.md).
    occurred_at: str | None = None
    # An enum field whose values silver files are split by (one value per file, see
    # assets.ingest.validate.to_silver): Delta's per-file min/max then let a filter on it skip
    # whole files.
    split_by: str | None = None
    # The silver columns Delta keeps per-file statistics on (``delta.dataSkippingStatsColumns``):
    # the ones readers filter on. None: Delta's default (the first 32 columns). Collecting min,
    # max and null counts of every column of 2M events a day costs the write ~4 s at M, and no
    # reader filters on event_id, user_id or the others.
    stats_columns: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if self.stats_columns is not None and self.split_by not in (None, *self.stats_columns):
            raise ValueError(f"{self.name}: split_by {self.split_by} needs statistics (stats_columns)")

    @property
    def silver_properties(self) -> dict[str, str]:
        """Delta table properties of ``silver/<name>``: set when the table is created, and on an
        existing table by the maintenance (:func:`assets.maintenance.maintain_table`)."""
        if self.stats_columns is None:
            return {}
        return {STATS_COLUMNS_PROPERTY: ",".join(self.stats_columns)}

    @property
    def field_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)

    @property
    def duplicate_columns(self) -> tuple[str, ...]:
        """What makes two records duplicates (SPEC §3): ``duplicate_key``, else ``record_hash``
        (the hash of every typed field: an exact repeat)."""
        return self.duplicate_key or ("record_hash",)

    def enum_values(self, name: str) -> tuple[str, ...]:
        [values] = [f.enum for f in self.fields if f.name == name and f.enum]
        return values


def _c(name: str) -> Column:
    return F.col(name)


ORDERS = SourceContract(
    name="orders",
    fmt="jsonl",
    suffixes=(".jsonl", ".jsonl.gz"),
    fields=(
        Field("order_id"),
        Field("user_id"),
        Field("merchant_id"),
        Field("product_id"),
        Field("spu_id"),
        Field("quantity", "int", check=lambda c: c >= 1),
        Field("unit_price", "decimal", check=lambda c: c > 0),
        Field(
            "platform_subsidy",
            "decimal",
            check=lambda c: (c >= 0) & (c < _c("quantity") * _c("unit_price")),
        ),
        Field("voucher_pool", required=False, enum=POOLS),
        Field("status", enum=ORDER_STATUSES),
        Field("paid_at", "timestamp", required=False),
        Field("updated_at", "timestamp"),
    ),
    consistency=(
        Consistency(
            "voucher_pool:consistency",
            lambda: _c("voucher_pool").isNull() == (_c("platform_subsidy") == 0),
        ),
    ),
    key=("order_id",),
    occurred_at="updated_at",
    derived={
        "order_amount": lambda: (_c("quantity") * _c("unit_price")).cast("decimal(18,2)"),
        "pay_amount": lambda: (_c("quantity") * _c("unit_price") - _c("platform_subsidy")).cast(
            "decimal(18,2)"
        ),
    },
)

RETURNS = SourceContract(
    name="returns",
    fmt="jsonl",
    suffixes=(".jsonl", ".jsonl.gz"),
    fields=(
        Field("return_id"),
        Field("order_id"),
        Field("return_type", enum=RETURN_TYPES),
        Field("reason_code", enum=REASON_CODES),
        Field("status", enum=RETURN_STATUSES),
        Field("requested_at", "timestamp"),
        Field("refunded_at", "timestamp", required=False),
        Field("refund_amount", "decimal", check=lambda c: c > 0),
        Field("updated_at", "timestamp"),
    ),
    consistency=(
        Consistency(
            "refunded_at:consistency",
            lambda: _c("refunded_at").isNotNull() == (_c("status") == "refunded"),
        ),
    ),
    key=("return_id",),
    occurred_at="updated_at",
)

AD_SPEND = SourceContract(
    name="ad_spend",
    fmt="csv",
    suffixes=(".csv",),
    fields=(
        Field("stat_date", "date"),
        Field("stat_hour", "int", check=lambda c: (c >= 0) & (c <= 23)),
        Field("advertiser_id"),
        Field("campaign_id"),
        Field("product_id"),
        Field("impressions", "long", check=lambda c: c >= 0),
        Field("clicks", "long", check=lambda c: (c >= 0) & (c <= _c("impressions"))),
        Field("spend", "decimal", check=lambda c: c >= 0),
    ),
    key=("stat_date", "stat_hour", "campaign_id"),
    occurred_at="stat_date",
)

TRAFFIC = SourceContract(
    name="traffic",
    fmt="parquet",
    suffixes=(".parquet",),
    fields=(
        Field("event_id"),
        Field("event_time", "timestamp"),
        Field("user_id"),
        Field("product_id"),
        Field("spu_id"),
        Field("merchant_id"),
        Field("pool", enum=POOLS),
        Field("event_type", enum=EVENT_TYPES),
        Field("campaign_id", required=False),
        Field("placement", enum=PLACEMENTS),
        Field("shown_price", "decimal", check=lambda c: c > 0),
    ),
    consistency=(
        Consistency(
            "campaign_id:consistency",
            lambda: _c("campaign_id").isNotNull() == (_c("pool") == "ad"),
        ),
    ),
    key=("event_id",),
    duplicate_key=("event_id",),
    occurred_at="event_time",
    # Readers of clicks only (attribution: a tenth of the events) skip the impression files.
    split_by="event_type",
    # attribution filters event_type, re-exposure event_time (dt is the partition column)
    stats_columns=("event_type", "event_time"),
)

CONTRACTS: dict[str, SourceContract] = {c.name: c for c in (ORDERS, RETURNS, AD_SPEND, TRAFFIC)}
SOURCES = tuple(CONTRACTS)
