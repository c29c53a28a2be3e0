"""An independent oracle for SPEC §6 (the ad-fee refund ledger) and §7 (the settlement files).

The ledger is rebuilt in plain Python from the landing files, one landing date ``D`` at a time
(every landing day of the end-to-end run, oldest first), exactly as SPEC §6 words it:

- as of ``D``: latest order and return versions from the folders ``dt <= D`` (SPEC §2 tie rule),
  attribution (§4) and largest-remainder fees (§5) as of ``D`` (the functions of
  ``tests.test_oracle``, which skip the generator's injected bad records);
- eligibility: attributed to ``ad``, status ``refunded``, type ``return_and_refund``,
  ``refunded_at <= paid_at + 30 days``;
- reversals first: a settled, not yet reversed return whose status as of ``D`` is no longer
  ``refunded`` gets a ``reversal`` row (the refund row, negated, settled on ``D``);
- then every eligible return never in the ledger is settled on ``D``, per order in
  ``(refunded_at, return_id)`` order: ``min(round_half_up(fee * min(1, refund / pay), 2),
  remaining)`` with ``remaining = max(0, fee - Σ ledger amounts of the order)``, lowered by each.

The settlement files of every day are rendered independently from those rows (SPEC §7: columns,
sort order, number / date / timestamp formats, header-only files on an empty day, the merchant
summary) and compared byte for byte with the published ones; the pipeline's ledger table is
compared row by row, to the fen and to the microsecond. The generated data (faults mode) holds fast
return timelines (``pipelines.generate.simulate.fast_returns``), so the ledger must contain late
returns, reversals and a refund cut by the per-order cap: the comparison cannot pass vacuously.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections import defaultdict
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import pytest

from tests.conftest import E2E_DAYS
from tests.test_oracle import (
    SHANGHAI,
    UTC,
    _business_day,
    _faults,
    _jsonl_records,
    _ts,
    ad_spend,
    allocate,
    attribute,
    clicks,
    latest_orders,
    paid_orders,
)

pytestmark = pytest.mark.slow

REFUND_WINDOW = dt.timedelta(days=30)  # SPEC §6 default
ELIGIBLE_TYPES = ("return_and_refund",)  # SPEC §6 default
FEN = Decimal("0.01")
LEDGER_COLUMNS = [
    "settlement_date",
    "entry_type",
    "merchant_id",
    "campaign_id",
    "order_id",
    "return_id",
    "paid_at",
    "refunded_at",
    "order_amount",
    "pay_amount",
    "refund_amount",
    "allocated_ad_fee",
    "ad_fee_refund",
]
SUMMARY_COLUMNS = ["settlement_date", "merchant_id", "entries", "ad_fee_refund"]
AMOUNTS = ("order_amount", "pay_amount", "refund_amount", "allocated_ad_fee", "ad_fee_refund")
TIMESTAMPS = ("paid_at", "refunded_at")


# --------------------------------------------------------------------------------------------
# SPEC §6, one landing date at a time
# --------------------------------------------------------------------------------------------


def latest_returns(landing: Path, as_of: dt.date) -> dict[str, dict]:
    """Latest version per return_id as of ``as_of`` (latest updated_at, then dt, file name, line)."""
    bad_lines, bad_files = _faults(landing)
    best: dict[str, tuple] = {}
    for pos, rec in _jsonl_records(landing, "returns", as_of, bad_lines, bad_files):
        key = (_ts(rec["updated_at"]), *pos)
        cur = best.get(rec["return_id"])
        if cur is None or key > cur[0]:
            best[rec["return_id"]] = (key, rec)
    return {rid: rec for rid, (_, rec) in best.items()}


def _round_half_up_fen(x: Fraction) -> int:
    """round_half_up of a non-negative amount in fen to a whole fen."""
    assert x >= 0
    return int((x + Fraction(1, 2)) // 1)


def ledger_day(landing: Path, day: dt.date, ledger: list[dict]) -> list[dict]:
    """The ledger rows settled on landing date ``day`` (reversals first, then refunds), given the
    rows settled before it."""
    orders = paid_orders(landing, day)
    merchants = {oid: rec["merchant_id"] for oid, rec in latest_orders(landing, day).items()}
    attribution = attribute(orders, clicks(landing, day))
    fees = {oid: fee for (_d, _c, oid), fee in allocate(orders, attribution, ad_spend(landing, day)).items()}
    returns = latest_returns(landing, day)

    settled = {r["return_id"]: r for r in ledger if r["entry_type"] == "refund"}
    reversed_ = {r["return_id"] for r in ledger if r["entry_type"] == "reversal"}
    out: list[dict] = []

    # reversals: the status of a settled return changed away from `refunded`
    for rid in sorted(settled):
        if rid in reversed_:
            continue
        if returns[rid]["status"] != "refunded":
            row = dict(settled[rid])
            row["settlement_date"] = day
            row["entry_type"] = "reversal"
            row["ad_fee_refund"] = -row["ad_fee_refund"]
            out.append(row)

    # new refunds: eligible as of `day`, never in the ledger
    in_ledger = set(settled) | reversed_
    eligible: dict[str, list[dict]] = defaultdict(list)
    for rid, r in returns.items():
        if rid in in_ledger or r["status"] != "refunded" or r["return_type"] not in ELIGIBLE_TYPES:
            continue
        o = orders.get(r["order_id"])
        if o is None or attribution[o["order_id"]][0] != "ad":
            continue
        refunded_at = _ts(r["refunded_at"])
        if refunded_at > o["paid_at"] + REFUND_WINDOW:
            continue
        eligible[o["order_id"]].append({**r, "_refunded_at": refunded_at})

    booked: dict[str, Decimal] = defaultdict(Decimal)
    for row in ledger + out:
        booked[row["order_id"]] += row["ad_fee_refund"]
    for oid in sorted(eligible):
        o = orders[oid]
        fee = fees[oid]
        pay = o["order_amount"] - o["platform_subsidy"]
        remaining = max(Decimal("0.00"), fee - booked[oid])
        for r in sorted(eligible[oid], key=lambda r: (r["_refunded_at"], r["return_id"])):
            refund = Decimal(r["refund_amount"])
            share = min(Fraction(1), Fraction(refund) / Fraction(pay))
            prorated = Decimal(_round_half_up_fen(Fraction(fee / FEN) * share)) * FEN
            amount = min(prorated, remaining)
            remaining -= amount
            out.append(
                {
                    "settlement_date": day,
                    "entry_type": "refund",
                    "merchant_id": merchants[oid],
                    "campaign_id": attribution[oid][1],
                    "order_id": oid,
                    "return_id": r["return_id"],
                    "paid_at": o["paid_at"],
                    "refunded_at": r["_refunded_at"],
                    "order_amount": o["order_amount"].quantize(FEN),
                    "pay_amount": pay.quantize(FEN),
                    "refund_amount": refund.quantize(FEN),
                    "allocated_ad_fee": fee,
                    "ad_fee_refund": amount.quantize(FEN),
                    "_prorated": prorated,
                }
            )
    return out


def compute_ledger(landing: Path, days: list[dt.date]) -> list[dict]:
    ledger: list[dict] = []
    for day in days:
        ledger += ledger_day(landing, day, ledger)
    return ledger


# --------------------------------------------------------------------------------------------
# SPEC §7, rendered independently
# --------------------------------------------------------------------------------------------


def fmt_amount(value: Decimal) -> str:
    value = value.quantize(FEN)
    return "0.00" if value == 0 else f"{value:.2f}"  # `-` only for negatives: never "-0.00"


def fmt_ts(value: dt.datetime) -> str:
    return value.astimezone(SHANGHAI).strftime("%Y-%m-%dT%H:%M:%S+08:00")


def fmt_value(column: str, value) -> str:
    if value is None:
        return ""
    if column in AMOUNTS:
        return fmt_amount(value)
    if column in TIMESTAMPS:
        return fmt_ts(value)
    if isinstance(value, dt.date):
        return value.strftime("%Y-%m-%d")
    return str(value)


def csv_field(value: str) -> str:
    if any(c in value for c in ',"\n\r'):
        return '"' + value.replace('"', '""') + '"'
    return value


def csv_text(header: list[str], rows: list[list[str]]) -> bytes:
    return "".join(",".join(csv_field(v) for v in line) + "\n" for line in [header, *rows]).encode("utf-8")


def settlement_files(day: dt.date, rows: list[dict]) -> dict[str, tuple[bytes, int, str]]:
    """file name -> (bytes, row count, amount total) of settlement date ``day``."""
    ordered = sorted(rows, key=lambda r: (r["merchant_id"], r["order_id"], r["return_id"], r["entry_type"]))
    refunds = csv_text(LEDGER_COLUMNS, [[fmt_value(c, r[c]) for c in LEDGER_COLUMNS] for r in ordered])
    per_merchant: dict[str, list] = {}
    for r in rows:
        m = per_merchant.setdefault(r["merchant_id"], [0, Decimal("0.00")])
        m[0] += 1
        m[1] += r["ad_fee_refund"]
    summary = csv_text(
        SUMMARY_COLUMNS,
        [[day.isoformat(), m, str(n), fmt_amount(total)] for m, (n, total) in sorted(per_merchant.items())],
    )
    total = fmt_amount(sum((r["ad_fee_refund"] for r in rows), Decimal("0.00")))
    return {
        f"ad_fee_refunds_{day.isoformat()}.csv": (refunds, len(rows), total),
        f"merchant_summary_{day.isoformat()}.csv": (summary, len(per_merchant), total),
    }


# --------------------------------------------------------------------------------------------
# The pipeline's ledger
# --------------------------------------------------------------------------------------------


def pipeline_ledger(spark, cfg) -> list[dict]:
    """Ledger rows with timestamps as tz-aware UTC datetimes (via epoch microseconds: the driver's
    time zone plays no part) and amounts as Decimal."""
    from pyspark.sql import functions as F

    from assets.storage import read_table

    df = read_table(spark, cfg.table_path("finance", "ad_fee_refund_ledger"))
    cols = [F.unix_micros(F.col(c)).alias(c) if c in TIMESTAMPS else F.col(c) for c in LEDGER_COLUMNS]
    out = []
    for rec in df.select(*cols).collect():
        row = rec.asDict()
        for c in TIMESTAMPS:
            if row[c] is not None:
                row[c] = dt.datetime(1970, 1, 1, tzinfo=UTC) + dt.timedelta(microseconds=row[c])
        for c in AMOUNTS:
            if row[c] is not None:
                row[c] = Decimal(row[c])
        out.append(row)
    return out


def _key(row: dict) -> tuple:
    return (row["settlement_date"], row["return_id"], row["entry_type"])


# --------------------------------------------------------------------------------------------
# Tests
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def oracle_ledger(pipeline):
    assert pipeline["ok"], "\n".join(pipeline["log"])
    return compute_ledger(Path(pipeline["cfg"].landing_dir), E2E_DAYS)


@pytest.fixture(scope="module")
def landed_returns(pipeline):
    """return_id -> first landing date of each of its statuses (from the landing files)."""
    landing = Path(pipeline["cfg"].landing_dir)
    first_seen: dict[str, dict[str, dt.date]] = defaultdict(dict)
    for day in E2E_DAYS:
        for rid, rec in latest_returns(landing, day).items():
            first_seen[rid].setdefault(rec["status"], day)
    return first_seen


def test_ledger_holds_late_returns_reversals_and_a_capped_refund(oracle_ledger):
    refunds = [r for r in oracle_ledger if r["entry_type"] == "refund"]
    reversals = [r for r in oracle_ledger if r["entry_type"] == "reversal"]
    # late return: settled on a landing date after the order's paid (= landing) date, i.e. after
    # the partition of the order's own day already ran
    late = [r for r in refunds if r["settlement_date"] > _business_day(r["paid_at"])]
    # a refunded version that landed after its refunded_at day
    late_records = [r for r in refunds if r["settlement_date"] > _business_day(r["refunded_at"])]
    capped = [r for r in refunds if r["ad_fee_refund"] < r["_prorated"]]
    settlement_days = {r["settlement_date"] for r in oracle_ledger}
    print(
        f"oracle ledger: {len(oracle_ledger)} rows ({len(refunds)} refunds, {len(reversals)} reversals) "
        f"over {len(settlement_days)} of {len(E2E_DAYS)} days; late returns {len(late)}, "
        f"late-landing refunds {len(late_records)}, capped refunds {len(capped)}"
    )
    assert refunds and len(settlement_days) >= 2
    assert reversals, "no reversal row: the reversal rules would be checked vacuously"
    assert late, "no late return: settlement after the order's landing date is not exercised"
    assert late_records, "no refund landing after its refunded_at day"
    assert capped, "no refund cut by the per-order cap"
    # SPEC §6 invariants on the oracle itself
    per_order: dict[str, Decimal] = defaultdict(Decimal)
    for r in oracle_ledger:
        per_order[r["order_id"]] += r["ad_fee_refund"]
        assert per_order[r["order_id"]] <= r["allocated_ad_fee"] or r["entry_type"] == "reversal"
    for rv in reversals:
        (refund,) = [r for r in refunds if r["return_id"] == rv["return_id"]]
        assert rv["settlement_date"] > refund["settlement_date"]
        assert rv["ad_fee_refund"] == -refund["ad_fee_refund"]


def test_settlement_and_reversal_dates_are_first_seen_dates(oracle_ledger, landed_returns):
    """Settlement date = first landing date the return is seen refunded (for these orders: the
    order and its touches landed by then); a reversal on the date the change is first seen."""
    for r in oracle_ledger:
        seen = landed_returns[r["return_id"]]
        if r["entry_type"] == "refund":
            assert r["settlement_date"] >= seen["refunded"], r
        else:
            later = [d for s, d in seen.items() if s != "refunded" and d > seen["refunded"]]
            assert r["settlement_date"] == min(later), (r, seen)


def test_ledger_matches_oracle_to_the_fen(spark, pipeline, oracle_ledger):
    got = pipeline_ledger(spark, pipeline["cfg"])
    expected = {_key(r): {c: r[c] for c in LEDGER_COLUMNS} for r in oracle_ledger}
    got_by_key = {}
    for r in got:
        assert _key(r) not in got_by_key, f"duplicate ledger row {_key(r)}"
        got_by_key[_key(r)] = r
    problems = []
    for key in sorted(set(expected) | set(got_by_key)):
        e, g = expected.get(key), got_by_key.get(key)
        if e is None:
            problems.append(f"{key}: unexpected ledger row {g}")
        elif g is None:
            problems.append(f"{key}: missing from the ledger (expected {e})")
        else:
            diffs = [f"{c}: expected {e[c]!r}, pipeline {g[c]!r}" for c in LEDGER_COLUMNS if e[c] != g[c]]
            if diffs:
                problems.append(f"{key}: " + "; ".join(diffs))
    assert not problems, "\n".join(problems[:50])
    assert len(got) == len(oracle_ledger)


def test_settlement_files_match_oracle_byte_for_byte(pipeline, oracle_ledger):
    root = Path(pipeline["cfg"].settlement_dir)
    by_day: dict[dt.date, list[dict]] = defaultdict(list)
    for r in oracle_ledger:
        by_day[r["settlement_date"]].append(r)
    assert set(by_day) <= set(E2E_DAYS)
    problems = []
    for day in E2E_DAYS:
        folder = root / f"dt={day.isoformat()}"
        expected = settlement_files(day, by_day.get(day, []))
        manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
        assert manifest["date"] == day.isoformat()
        listed = {f["name"]: f for f in manifest["files"]}
        assert set(listed) == set(expected), (day, sorted(listed))
        on_disk = {p.name for p in folder.iterdir() if not p.name.startswith(".")}
        assert on_disk == set(expected) | {"manifest.json"}, (day, sorted(on_disk))
        for name, (content, rows, total) in expected.items():
            published = (folder / name).read_bytes()
            if published != content:
                problems.append(
                    f"{name}: differs from the oracle\n--- oracle\n{content.decode()}--- published\n"
                    f"{published.decode()}"
                )
            entry = listed[name]
            if (entry["rows"], entry["amount_total"], entry["sha256"]) != (
                rows,
                total,
                hashlib.sha256(content).hexdigest(),
            ):
                problems.append(f"{name}: manifest {entry}, expected rows {rows}, total {total}")
    assert not problems, "\n".join(problems[:10])


def test_an_empty_day_gets_header_only_files():
    files = settlement_files(dt.date(2026, 11, 4), [])
    header = (",".join(LEDGER_COLUMNS) + "\n").encode()
    assert files["ad_fee_refunds_2026-11-04.csv"] == (header, 0, "0.00")
    header = (",".join(SUMMARY_COLUMNS) + "\n").encode()
    assert files["merchant_summary_2026-11-04.csv"] == (header, 0, "0.00")
