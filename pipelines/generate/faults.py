"""Record-level fault kinds injected into landing files (only with ``faults=True``).

Each kind makes a record that breaks exactly one SPEC rule, or at least one whose *first* broken
rule (parse, then per field in SPEC column order: required, type, enum, range, then the
cross-field consistency rules) is ``rule``; ``rule`` is the quarantine rule id of docs/DESIGN.md,
``"duplicate"`` for exact repeats, or None for records that must be accepted.

Corrupted records are *extra copies* of real records inserted next to them (the real record stays),
so the accepted data of a run with faults equals the data of a run without, apart from the
deliberate accepted faults (late records, re-sent versions, restatements, ...).

Scopes: ``row`` -> a copy of (or, for ``op="replace"``, a change to) a row of the same file;
``same_file``/``cross_file``/``cross_day`` -> exact duplicates of a row of the same file, of an
earlier file of the same dt, of a file of an earlier dt.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .simulate import AD, CANCELLED, ORGANIC, R_APPROVED, R_REFUNDED, R_REQUESTED

SH = dt.timezone(dt.timedelta(hours=8))


@dataclass(frozen=True)
class FaultKind:
    name: str
    rule: str | None
    scope: str = "row"  # row | same_file | cross_file | cross_day
    op: str = "after"  # after (insert a copy after the anchor row) | replace (change the row in place)
    cond: Callable | None = None  # cols (dict of numpy arrays of the file) -> bool mask of eligible rows
    make: Callable | None = None  # (record, rng) -> record


def dumps(d: dict) -> str:
    return json.dumps(d, separators=(",", ":"), ensure_ascii=False)


def _json(f):
    def make(line: str, rng) -> str:
        d = json.loads(line)
        f(d, rng)
        return dumps(d)

    return make


def _truncate(line: str, rng) -> str:
    cut = int(rng.integers(max(1, len(line) // 3), len(line) - 1))
    return line[:cut]


def _bad_date(ts: str) -> str:
    """``2026-11-03T10:00:00+08:00`` -> ``2026-13-45T10:00:00+08:00`` (not a date)."""
    return ts[:5] + "13-45" + ts[10:]


def _no_offset(ts: str) -> str:
    """A valid instant written as local time without an offset: ``2026-11-03 10:00:00``."""
    t = dt.datetime.fromisoformat(ts).astimezone(SH)
    return t.strftime("%Y-%m-%d %H:%M:%S")


def _money(x: decimal.Decimal) -> str:
    return str(x.quantize(decimal.Decimal("0.01")))


def _subsidy_at_amount(d: dict, rng) -> None:
    d["platform_subsidy"] = _money(decimal.Decimal(d["unit_price"]) * int(d["quantity"]))
    if d["voucher_pool"] is None:
        d["voucher_pool"] = ["ad", "organic"][int(rng.integers(0, 2))]


def _set(key, value):
    def f(d, rng):
        d[key] = value(d, rng) if callable(value) else value

    return f


def _delete(key):
    def f(d, rng):
        del d[key]

    return f


def _choice(options):
    return lambda d, rng: options[int(rng.integers(0, len(options)))]


def _negative_money(d, key):
    return "-" + d[key] if d[key] != "0.00" else "-1.00"


def _dup_kinds(suffix: str = "line") -> list[FaultKind]:
    return [
        FaultKind(f"duplicate_{suffix}", "duplicate", scope="same_file"),
        FaultKind(f"duplicate_{suffix}_other_file", "duplicate", scope="cross_file"),
        FaultKind(f"duplicate_{suffix}_other_day", "duplicate", scope="cross_day"),
    ]


def _extra_field(key: str, value: str):
    return _json(_set(key, value))


ORDER_KINDS = [
    FaultKind("extra_field", None, op="replace", make=_extra_field("coupon_code", "NEW11")),
    *_dup_kinds(),
    FaultKind("malformed_json", "json:malformed", make=_truncate),
    FaultKind("missing_order_id", "order_id:required", make=_json(_delete("order_id"))),
    FaultKind("null_user_id", "user_id:required", make=_json(_set("user_id", None))),
    FaultKind("bad_status", "status:enum", make=_json(_set("status", _choice(["pending", "PAID"])))),
    FaultKind(
        "bad_paid_at",
        "paid_at:type",
        cond=lambda c: c["paid"] >= 0,
        make=_json(_set("paid_at", lambda d, r: _bad_date(d["paid_at"]))),
    ),
    FaultKind(
        "updated_at_without_offset",
        "updated_at:type",
        make=_json(_set("updated_at", lambda d, r: _no_offset(d["updated_at"]))),
    ),
    FaultKind("non_positive_quantity", "quantity:range", make=_json(_set("quantity", _choice([0, -1])))),
    FaultKind(
        "unit_price_3_decimals",
        "unit_price:type",
        make=_json(_set("unit_price", lambda d, r: d["unit_price"] + "5")),
    ),
    FaultKind("subsidy_not_below_amount", "platform_subsidy:range", make=_json(_subsidy_at_amount)),
    FaultKind(
        "voucher_pool_without_subsidy",
        "voucher_pool:consistency",
        cond=lambda c: c["subsidy"] == 0,
        make=_json(_set("voucher_pool", _choice(["ad", "organic"]))),
    ),
    FaultKind(
        "subsidy_without_voucher_pool",
        "voucher_pool:consistency",
        cond=lambda c: c["subsidy"] > 0,
        make=_json(_set("voucher_pool", None)),
    ),
    FaultKind(
        "bad_voucher_pool",
        "voucher_pool:enum",
        cond=lambda c: c["subsidy"] > 0,
        make=_json(_set("voucher_pool", "live")),
    ),
]

RETURN_KINDS = [
    FaultKind("extra_field", None, op="replace", make=_extra_field("logistics_no", "SF1234567890")),
    *_dup_kinds(),
    FaultKind("malformed_json", "json:malformed", make=_truncate),
    FaultKind("missing_return_id", "return_id:required", make=_json(_delete("return_id"))),
    FaultKind("bad_return_type", "return_type:enum", make=_json(_set("return_type", "refund"))),
    FaultKind("bad_reason_code", "reason_code:enum", make=_json(_set("reason_code", "too_expensive"))),
    FaultKind(
        "bad_status", "status:enum", cond=lambda c: c["refunded"] < 0, make=_json(_set("status", "refunding"))
    ),
    FaultKind(
        "bad_requested_at",
        "requested_at:type",
        make=_json(_set("requested_at", lambda d, r: _bad_date(d["requested_at"]))),
    ),
    FaultKind(
        "refunded_at_without_refund",
        "refunded_at:consistency",
        cond=lambda c: (c["status"] == R_REQUESTED) | (c["status"] == R_APPROVED),
        make=_json(_set("refunded_at", lambda d, r: d["updated_at"])),
    ),
    FaultKind(
        "refunded_without_refunded_at",
        "refunded_at:consistency",
        cond=lambda c: c["status"] == R_REFUNDED,
        make=_json(_set("refunded_at", None)),
    ),
    FaultKind(
        "non_positive_refund_amount",
        "refund_amount:range",
        make=_json(
            _set(
                "refund_amount",
                lambda d, r: ["0.00", _negative_money(d, "refund_amount")][int(r.integers(0, 2))],
            )
        ),
    ),
    FaultKind(
        "refund_amount_3_decimals",
        "refund_amount:type",
        make=_json(_set("refund_amount", lambda d, r: d["refund_amount"] + "5")),
    ),
]

AD_SPEND_COLUMNS = [
    "stat_date",
    "stat_hour",
    "advertiser_id",
    "campaign_id",
    "product_id",
    "impressions",
    "clicks",
    "spend",
]


def _csv(f):
    def make(line: str, rng) -> str:
        d = dict(zip(AD_SPEND_COLUMNS, line.split(","), strict=True))
        f(d, rng)
        return ",".join(str(d[c]) for c in AD_SPEND_COLUMNS)

    return make


AD_SPEND_KINDS = [
    *_dup_kinds("row"),
    FaultKind(
        "clicks_above_impressions",
        "clicks:range",
        make=_csv(_set("clicks", lambda d, r: int(d["impressions"]) + int(r.integers(1, 6)))),
    ),
    FaultKind(
        "negative_spend", "spend:range", make=_csv(_set("spend", lambda d, r: _negative_money(d, "spend")))
    ),
    FaultKind("spend_3_decimals", "spend:type", make=_csv(_set("spend", lambda d, r: d["spend"] + "5"))),
    FaultKind("stat_hour_out_of_range", "stat_hour:range", make=_csv(_set("stat_hour", 24))),
    FaultKind("missing_campaign_id", "campaign_id:required", make=_csv(_set("campaign_id", ""))),
    FaultKind(
        "bad_stat_date",
        "stat_date:type",
        make=_csv(_set("stat_date", lambda d, r: d["stat_date"].replace("-", "/"))),
    ),
]


def _row(f):
    def make(row: dict, rng) -> dict:
        row = dict(row)
        f(row, rng)
        return row

    return make


def _later(row, rng):
    row["event_time"] = row["event_time"] + dt.timedelta(seconds=int(rng.integers(1, 60)))


TRAFFIC_KINDS = [
    *_dup_kinds("event"),
    FaultKind("duplicate_event_id_changed_record", "duplicate", scope="same_file", make=_row(_later)),
    FaultKind(
        "bad_pool", "pool:enum", cond=lambda c: c["pool"] == ORGANIC, make=_row(_set("pool", "recommend"))
    ),
    FaultKind("bad_event_type", "event_type:enum", make=_row(_set("event_type", "view"))),
    FaultKind("bad_placement", "placement:enum", make=_row(_set("placement", "banner"))),
    FaultKind(
        "non_positive_shown_price",
        "shown_price:range",
        make=_row(_set("shown_price", _choice([decimal.Decimal("0.00"), decimal.Decimal("-9.90")]))),
    ),
    FaultKind(
        "ad_event_without_campaign",
        "campaign_id:consistency",
        cond=lambda c: c["pool"] == AD,
        make=_row(_set("campaign_id", None)),
    ),
    FaultKind(
        "organic_event_with_campaign",
        "campaign_id:consistency",
        cond=lambda c: c["pool"] == ORGANIC,
        make=_row(_set("campaign_id", "c000000")),
    ),
    FaultKind("null_user_id", "user_id:required", make=_row(_set("user_id", None))),
    FaultKind("null_event_time", "event_time:required", make=_row(_set("event_time", None))),
]

KINDS = {"orders": ORDER_KINDS, "returns": RETURN_KINDS, "ad_spend": AD_SPEND_KINDS, "traffic": TRAFFIC_KINDS}

FAULT_SHARE = 0.008  # ~0.8% of a source's records per day, spread over its kinds
FAULT_CAP = 200  # per kind, source and day


def kind_counts(
    rng: np.random.Generator, kinds: list[FaultKind], n_records: int, day_index: int
) -> list[int]:
    """How many records of each kind to inject on a day with ``n_records`` records.

    Expected ``FAULT_SHARE * n_records / len(kinds)`` per kind; below one per day, the kinds take
    turns over the days (deterministic phases) so that small sources get each kind now and then.
    """
    x = FAULT_SHARE * n_records / max(1, len(kinds))
    out = []
    for k in range(len(kinds)):
        if x >= 1:
            out.append(min(FAULT_CAP, int(round(x))))
        else:
            phase = (k + 0.5) / len(kinds)
            out.append(int(np.floor((day_index + 1) * x + phase) - np.floor(day_index * x + phase)))
    return out


__all__ = ["KINDS", "FaultKind", "kind_counts", "dumps", "AD_SPEND_COLUMNS", "CANCELLED"]
