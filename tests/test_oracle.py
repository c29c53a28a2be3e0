"""An independent oracle for SPEC §4-5 and §8 (kpi_daily), computed from the landing files.

Nothing here uses the pipeline's readers or tables to compute the expectation: the landing
files are parsed with json/csv/pyarrow, injected bad records and duplicates are skipped using
the generator's ``faults.json`` (every record with a non-null ``rule``; files whose rule is
``file:...`` are skipped whole), the latest-version rules of SPEC §2 are applied in plain
Python, and attribution / largest-remainder allocation / daily KPIs are computed with Decimal
and Fraction. The result is compared with the pipeline's outputs as of the last landing day.
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import io
import json
from collections import defaultdict
from decimal import ROUND_FLOOR, Decimal
from fractions import Fraction
from pathlib import Path
from zoneinfo import ZoneInfo

import pyarrow.parquet as pq
import pytest

from tests.conftest import E2E_DAYS

pytestmark = pytest.mark.slow

SHANGHAI = ZoneInfo("Asia/Shanghai")
UTC = dt.timezone.utc
ATTRIBUTION_WINDOW = dt.timedelta(days=7)  # SPEC §4 default
KPI_WINDOW_DAYS = 30  # SPEC §8 default restatement window
SCOPE_DAYS = 60  # DESIGN: finance scope = paid dates in [D - 60, D]
FEN = Decimal("0.01")
AS_OF = E2E_DAYS[-1]


# --------------------------------------------------------------------------------------------
# Landing files, read independently
# --------------------------------------------------------------------------------------------


def _faults(landing: Path):
    faults = json.loads((landing / "_generator" / "faults.json").read_text())
    bad_lines = {(f["file"], f["line"]) for f in faults if f["rule"] is not None and f["line"] is not None}
    bad_files = {f["file"] for f in faults if f["rule"] is not None and f["rule"].startswith("file:")}
    return bad_lines, bad_files


def _partitions(landing: Path, source: str, as_of: dt.date):
    """(dt, file name, relative path, absolute path) of every landing file with dt <= as_of."""
    base = landing / source
    if not base.exists():
        return []
    out = []
    for folder in sorted(base.iterdir()):
        if not folder.name.startswith("dt="):
            continue
        day = dt.date.fromisoformat(folder.name[3:])
        if day > as_of:
            continue
        for path in sorted(folder.iterdir()):
            out.append((day, path.name, f"{source}/{folder.name}/{path.name}", path))
    return out


def _ts(value: str) -> dt.datetime:
    parsed = dt.datetime.fromisoformat(value)
    assert parsed.tzinfo is not None, value
    return parsed.astimezone(UTC)


def _business_day(ts: dt.datetime) -> dt.date:
    return ts.astimezone(SHANGHAI).date()


def _jsonl_records(landing: Path, source: str, as_of: dt.date, bad_lines, bad_files):
    for day, name, rel, path in _partitions(landing, source, as_of):
        if rel in bad_files:
            continue
        data = path.read_bytes()
        if name.endswith(".gz"):
            data = gzip.decompress(data)
        lines = [line for line in data.decode("utf-8").split("\n") if line.strip()]
        for lineno, line in enumerate(lines, start=1):
            if (rel, lineno) in bad_lines:
                continue
            yield (day, name, lineno), json.loads(line)


def latest_orders(landing: Path, as_of: dt.date) -> dict[str, dict]:
    """Latest version per order_id (SPEC §2: latest updated_at, then dt, file name, line)."""
    bad_lines, bad_files = _faults(landing)
    best: dict[str, tuple] = {}
    for pos, rec in _jsonl_records(landing, "orders", as_of, bad_lines, bad_files):
        key = (_ts(rec["updated_at"]), *pos)
        cur = best.get(rec["order_id"])
        if cur is None or key > cur[0]:
            best[rec["order_id"]] = (key, rec)
    return {oid: rec for oid, (_, rec) in best.items()}


def paid_orders(landing: Path, as_of: dt.date) -> dict[str, dict]:
    out = {}
    for oid, rec in latest_orders(landing, as_of).items():
        if rec.get("paid_at") is None:
            continue
        paid_at = _ts(rec["paid_at"])
        paid_date = _business_day(paid_at)
        if not (as_of - dt.timedelta(days=SCOPE_DAYS) <= paid_date <= as_of):
            continue
        quantity = int(rec["quantity"])
        amount = quantity * Decimal(rec["unit_price"])
        subsidy = Decimal(rec["platform_subsidy"])
        out[oid] = {
            "order_id": oid,
            "user_id": rec["user_id"],
            "product_id": rec["product_id"],
            "paid_at": paid_at,
            "paid_date": paid_date,
            "order_amount": amount,
            "platform_subsidy": subsidy,
            "voucher_pool": rec.get("voucher_pool"),
        }
    return out


def clicks(landing: Path, as_of: dt.date) -> dict[tuple[str, str], list[tuple]]:
    """Accepted click events per (user_id, product_id): (event_time UTC, pool, event_id, campaign_id)."""
    bad_lines, bad_files = _faults(landing)
    seen: set[str] = set()
    out: dict[tuple[str, str], list[tuple]] = defaultdict(list)
    for _day, _name, rel, path in _partitions(landing, "traffic", as_of):
        if rel in bad_files:
            continue
        table = pq.read_table(path).to_pylist()
        for lineno, row in enumerate(table, start=1):
            if (rel, lineno) in bad_lines:
                continue
            if row["event_id"] in seen:  # SPEC §3: a repeated event_id is a duplicate
                continue
            seen.add(row["event_id"])
            if row["event_type"] != "click":
                continue
            t = row["event_time"]
            t = t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)
            out[(row["user_id"], row["product_id"])].append((t, row["pool"], row["event_id"], row["campaign_id"]))
    return out


def ad_spend(landing: Path, as_of: dt.date) -> dict[tuple[dt.date, str], dict]:
    """spend(c, d) after restatement (latest dt, file name, line per (stat_date, stat_hour, campaign_id))."""
    bad_lines, bad_files = _faults(landing)
    rows: dict[tuple, tuple] = {}
    for day, name, rel, path in _partitions(landing, "ad_spend", as_of):
        if rel in bad_files:
            continue
        reader = csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"), newline=""))
        for lineno, rec in enumerate(reader, start=1):
            if (rel, lineno) in bad_lines:
                continue
            key = (dt.date.fromisoformat(rec["stat_date"]), int(rec["stat_hour"]), rec["campaign_id"])
            pos = (day, name, lineno)
            if key not in rows or pos > rows[key][0]:
                rows[key] = (pos, rec)
    out: dict[tuple[dt.date, str], dict] = {}
    for (stat_date, _hour, campaign), (_pos, rec) in rows.items():
        entry = out.setdefault((stat_date, campaign), {"spend": Decimal("0.00"), "advertiser_id": rec["advertiser_id"]})
        entry["spend"] += Decimal(rec["spend"])
    return out


# --------------------------------------------------------------------------------------------
# SPEC §4, §5, §8
# --------------------------------------------------------------------------------------------


def attribute(orders: dict[str, dict], touches) -> dict[str, tuple[str, str | None, str | None]]:
    """order_id -> (attributed_pool, campaign_id, touch event_id)."""
    out = {}
    for oid, o in orders.items():
        t = o["paid_at"]
        cands = [c for c in touches.get((o["user_id"], o["product_id"]), []) if t - ATTRIBUTION_WINDOW <= c[0] <= t]
        if not cands:
            out[oid] = ("direct", None, None)
            continue
        # latest; ties: pool ad first, then smallest event_id
        latest = max(c[0] for c in cands)
        best = min((c for c in cands if c[0] == latest), key=lambda c: (0 if c[1] == "ad" else 1, c[2]))
        out[oid] = (best[1], best[3] if best[1] == "ad" else None, best[2])
    return out


def allocate(orders, attribution, spend) -> dict[tuple[dt.date, str, str], Decimal]:
    """(stat_date, campaign_id, order_id) -> allocated_ad_fee by largest remainder (SPEC §5)."""
    groups: dict[tuple[dt.date, str], list[str]] = defaultdict(list)
    for oid, (pool, campaign, _e) in attribution.items():
        if pool == "ad":
            groups[(orders[oid]["paid_date"], campaign)].append(oid)
    out = {}
    for (day, campaign), oids in groups.items():
        total_spend = spend.get((day, campaign), {"spend": Decimal("0.00")})["spend"]
        spend_fen = int(total_spend / FEN)
        total_amount = sum(orders[o]["order_amount"] for o in oids)
        shares = {}
        for o in oids:
            exact = Fraction(spend_fen) * Fraction(orders[o]["order_amount"]) / Fraction(total_amount)
            shares[o] = (exact.numerator // exact.denominator, exact - exact.numerator // exact.denominator)
        left = spend_fen - sum(floor for floor, _ in shares.values())
        order = sorted(oids, key=lambda o: (-shares[o][1], o))
        fen = {o: shares[o][0] for o in oids}
        for o in order[:left]:
            fen[o] += 1
        for o in oids:
            out[(day, campaign, o)] = (Decimal(fen[o]) * FEN).quantize(FEN)
    return out


def kpi_daily(orders, attribution, spend, as_of: dt.date) -> dict[dt.date, dict]:
    days = [as_of - dt.timedelta(days=i) for i in range(KPI_WINDOW_DAYS)]
    out = {}
    for d in days:
        cohort = [o for o in orders.values() if o["paid_date"] == d]
        day_spend = sum((v["spend"] for (sd, _c), v in spend.items() if sd == d), Decimal("0.00"))
        has_spend_row = any(sd == d for (sd, _c) in spend)
        if not cohort and not has_spend_row:
            continue
        gmv = {"ad": Decimal("0.00"), "organic": Decimal("0.00"), "direct": Decimal("0.00")}
        for o in cohort:
            gmv[attribution[o["order_id"]][0]] += o["order_amount"]
        out[d] = {
            "orders": len(cohort),
            "buyers": len({o["user_id"] for o in cohort}),
            "payment_gmv": sum((o["order_amount"] for o in cohort), Decimal("0.00")),
            "gmv_ad": gmv["ad"],
            "gmv_organic": gmv["organic"],
            "gmv_direct": gmv["direct"],
            "platform_subsidy": sum((o["platform_subsidy"] for o in cohort), Decimal("0.00")),
            "ad_spend": day_spend,
            "roi": None if day_spend == 0 else gmv["ad"] / day_spend,
        }
    return out


def compute_oracle(landing: Path, as_of: dt.date) -> dict:
    orders = paid_orders(landing, as_of)
    attribution = attribute(orders, clicks(landing, as_of))
    spend = ad_spend(landing, as_of)
    return {
        "orders": orders,
        "attribution": attribution,
        "spend": spend,
        "allocation": allocate(orders, attribution, spend),
        "kpi_daily": kpi_daily(orders, attribution, spend, as_of),
    }


# --------------------------------------------------------------------------------------------
# Comparisons against the pipeline's outputs
# --------------------------------------------------------------------------------------------

KPI_AMOUNTS = ["payment_gmv", "gmv_ad", "gmv_organic", "gmv_direct", "platform_subsidy", "ad_spend"]
KPI_COUNTS = ["orders", "buyers"]


def _as_of_rows(spark, cfg, layer: str, name: str, as_of: dt.date):
    from pyspark.sql import functions as F

    from assets.storage import read_table

    return read_table(spark, cfg.table_path(layer, name)).filter(F.col("as_of") == F.lit(as_of)).collect()


def _to_date(value) -> dt.date:
    return value if isinstance(value, dt.date) and not isinstance(value, dt.datetime) else dt.date.fromisoformat(str(value)[:10])


def _dec(value) -> Decimal | None:
    return None if value is None else Decimal(str(value)).quantize(FEN)


def diff_attribution(oracle, rows) -> list[str]:
    got = {r["order_id"]: (r["attributed_pool"], r["campaign_id"], r["touch_event_id"]) for r in rows}
    problems = []
    expected = oracle["attribution"]
    for oid in sorted(set(expected) | set(got)):
        if oid not in got:
            problems.append(f"{oid}: missing from order_attribution (expected {expected[oid]})")
        elif oid not in expected:
            problems.append(f"{oid}: unexpected in order_attribution {got[oid]}")
        elif expected[oid][:2] != got[oid][:2]:
            problems.append(f"{oid}: expected pool/campaign/touch {expected[oid]}, pipeline {got[oid]}")
    return problems


def diff_allocation(oracle, rows) -> list[str]:
    got = {
        (_to_date(r["stat_date"]), r["campaign_id"], r["order_id"]): _dec(r["allocated_ad_fee"])
        for r in rows
        if r["order_id"] is not None
    }
    expected = oracle["allocation"]
    problems = []
    for key in sorted(set(expected) | set(got)):
        if expected.get(key) != got.get(key):
            problems.append(f"{key}: expected {expected.get(key)}, pipeline {got.get(key)}")
    return problems


def diff_kpi(oracle, rows, what: str) -> list[str]:
    got = {_to_date(r["dt"]): r for r in rows}
    expected = oracle["kpi_daily"]
    problems = []
    for d in sorted(set(expected) | set(got)):
        if d not in got:
            problems.append(f"{what} dt={d}: missing (expected {expected[d]})")
            continue
        if d not in expected:
            problems.append(f"{what} dt={d}: unexpected row")
            continue
        e, g = expected[d], got[d]
        for col in KPI_COUNTS:
            if int(g[col]) != e[col]:
                problems.append(f"{what} dt={d} {col}: expected {e[col]}, pipeline {g[col]}")
        for col in KPI_AMOUNTS:
            if _dec(g[col]) != e[col]:
                problems.append(f"{what} dt={d} {col}: expected {e[col]}, pipeline {g[col]}")
        if e["roi"] is None or g["roi"] is None:
            if (e["roi"] is None) != (g["roi"] is None):
                problems.append(f"{what} dt={d} roi: expected {e['roi']}, pipeline {g['roi']}")
        elif abs(float(g["roi"]) - float(e["roi"])) > 1e-6:
            problems.append(f"{what} dt={d} roi: expected {e['roi']}, pipeline {g['roi']}")
    return problems


def serving_kpi_rows(cfg, days) -> list[dict]:
    import duckdb

    path = Path(cfg.warehouse_dir) / "serving" / "kpi.duckdb"
    con = duckdb.connect(str(path), read_only=True)
    try:
        cur = con.execute("SELECT * FROM kpi_daily")
        names = [c[0] for c in cur.description]
        rows = [dict(zip(names, r)) for r in cur.fetchall()]
    finally:
        con.close()
    return [r for r in rows if _to_date(r["dt"]) in days]


# --------------------------------------------------------------------------------------------
# Tests
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def oracle(pipeline):
    assert pipeline["ok"], "\n".join(pipeline["log"])
    return compute_oracle(Path(pipeline["cfg"].landing_dir), AS_OF)


def test_oracle_sees_every_pool(oracle):
    pools = {a[0] for a in oracle["attribution"].values()}
    assert pools == {"ad", "organic", "direct"}, pools
    assert oracle["allocation"], "no ad-attributed order: the allocation comparison would be vacuous"


def test_attribution_matches_oracle(spark, pipeline, oracle):
    from assets.finance.ledger import attribution_table

    rows = [r.asDict() for r in attribution_table(spark, pipeline["cfg"]).read(AS_OF).collect()]
    problems = diff_attribution(oracle, rows)
    assert not problems, "\n".join(problems[:50])


def test_ad_fee_allocation_matches_oracle(spark, pipeline, oracle):
    from assets.finance.ledger import allocation_table

    rows = [r.asDict() for r in allocation_table(spark, pipeline["cfg"]).read(AS_OF).collect()]
    problems = diff_allocation(oracle, rows)
    assert not problems, "\n".join(problems[:50])
    # SPEC §5: the fees of A(c, d) add up to spend(c, d) exactly.
    per_group: dict[tuple, Decimal] = defaultdict(Decimal)
    for (day, campaign, _o), fee in oracle["allocation"].items():
        per_group[(day, campaign)] += fee
    for (day, campaign), total in per_group.items():
        assert total == oracle["spend"].get((day, campaign), {"spend": Decimal("0.00")})["spend"], (day, campaign)


def test_kpi_daily_gold_matches_oracle(spark, pipeline, oracle):
    rows = [r.asDict() for r in _as_of_rows(spark, pipeline["cfg"], "gold", "kpi_daily", AS_OF)]
    problems = diff_kpi(oracle, rows, "gold")
    assert not problems, "\n".join(problems[:50])


def test_kpi_daily_serving_matches_oracle(pipeline, oracle):
    days = {AS_OF - dt.timedelta(days=i) for i in range(KPI_WINDOW_DAYS)}
    rows = serving_kpi_rows(pipeline["cfg"], days)
    for r in rows:
        assert _to_date(r["as_of"]) == AS_OF, r
    problems = diff_kpi(oracle, rows, "serving")
    assert not problems, "\n".join(problems[:50])
