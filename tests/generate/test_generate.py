"""The sample-data generator: determinism, formats, SPEC rules, faults.json, and realistic structure."""

from __future__ import annotations

import collections
import csv
import datetime as dt
import gzip
import hashlib
import io
import json
import re
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipelines.generate import GenerationSummary, generate_landing
from pipelines.generate.faults import KINDS

from .conftest import START
from .frames import attribution, latest, load_accepted, reexposure
from .rules import classify_landing, iter_files

SH = dt.timezone(dt.timedelta(hours=8))
FILE_RE = re.compile(
    r"^(orders|returns|ad_spend|traffic)/dt=\d{4}-\d{2}-\d{2}/part-\d{4}\.(jsonl|jsonl\.gz|csv|parquet)$"
)


def tree_hash(root: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.is_file():
            h.update(p.relative_to(root).as_posix().encode())
            h.update(hashlib.sha256(p.read_bytes()).digest())
    return h.hexdigest()


def faults_of(landing: Path) -> list[dict]:
    return json.loads((landing / "_generator" / "faults.json").read_text())


def read_lines(landing: Path, rel: str) -> list[str]:
    data = (landing / rel).read_bytes()
    if rel.endswith(".gz"):
        data = gzip.decompress(data)
    return data.decode().split("\n")[:-1]


def business_date(ts: str) -> dt.date:
    return dt.datetime.fromisoformat(ts.replace("Z", "+00:00")).astimezone(SH).date()


# ---- determinism --------------------------------------------------------------------------------


def test_same_arguments_give_identical_bytes_and_other_seed_differs(tmp_path):
    end = START + dt.timedelta(days=2)
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    generate_landing(a, START, end, orders_per_day=120, seed=3, faults=True)
    generate_landing(b, START, end, orders_per_day=120, seed=3, faults=True)
    generate_landing(c, START, end, orders_per_day=120, seed=4, faults=True)
    assert tree_hash(a) == tree_hash(b)
    assert tree_hash(a) != tree_hash(c)


def test_rerun_into_the_same_folder_replaces_its_files(tmp_path):
    end = START + dt.timedelta(days=2)
    generate_landing(tmp_path / "x", START, end, orders_per_day=80, seed=5, faults=True)
    generate_landing(tmp_path / "x", START, end, orders_per_day=80, seed=5, faults=False)
    generate_landing(tmp_path / "y", START, end, orders_per_day=80, seed=5, faults=False)
    assert tree_hash(tmp_path / "x") == tree_hash(tmp_path / "y")


def test_rejects_bad_arguments(tmp_path):
    with pytest.raises(ValueError):
        generate_landing(tmp_path, START, START - dt.timedelta(days=1))
    with pytest.raises(ValueError):
        generate_landing(tmp_path, START, START, orders_per_day=0)


def test_warmup_lands_the_later_records_of_earlier_orders_and_nothing_before_the_start(tmp_path):
    """With a warm-up the platform already runs before START: day 1 carries status updates and
    returns of orders paid before it (their first versions never land), so the first days' input
    is not that of an empty world; no folder before START is written."""
    end = START + dt.timedelta(days=2)
    cold = generate_landing(tmp_path / "cold", START, end, orders_per_day=80, seed=5)
    warm = generate_landing(tmp_path / "warm", START, end, orders_per_day=80, seed=5, warmup_days=20)
    assert warm.warmup_days == 20 and json.loads(
        (tmp_path / "warm" / "_generator" / "summary.json").read_text()
    )["warmup_days"] == 20
    start = pd.Timestamp(START.isoformat(), tz="Asia/Shanghai")
    for summary in (cold, warm):
        assert all(d >= START.isoformat() for source in summary.records.values() for d in source)
        assert set(summary.cohorts) == {(START + dt.timedelta(days=i)).isoformat() for i in range(3)}
    cold_orders = load_accepted(tmp_path / "cold")["orders"]
    warm_frames = load_accepted(tmp_path / "warm")
    assert (cold_orders["paid_at"] < start).sum() == 0
    earlier = warm_frames["orders"][warm_frames["orders"]["paid_at"] < start]
    assert len(earlier) > 0 and (earlier["dt"] == START.isoformat()).any()
    assert warm_frames["returns"]["order_id"].isin(earlier["order_id"]).any()
    assert warm.records["orders"][START.isoformat()] > cold.records["orders"][START.isoformat()]
    with pytest.raises(ValueError):
        generate_landing(tmp_path / "bad", START, end, warmup_days=-1)


# ---- layout and formats -------------------------------------------------------------------------


def test_layout_file_names_and_summary(faulty_landing):
    landing, summary = faulty_landing
    assert isinstance(summary, GenerationSummary)
    assert "faults listed in _generator/faults.json" in summary.describe()
    rels = [p.relative_to(landing).as_posix() for _, _, p in iter_files(landing)]
    assert rels and all(FILE_RE.match(r) for r in rels), [r for r in rels if not FILE_RE.match(r)]
    for source in ("orders", "returns", "ad_spend", "traffic"):
        for d, files in summary.files[source].items():
            assert 2 <= len(files) <= 4 or source == "returns", (source, d, files)
    on_disk = json.loads((landing / "_generator" / "summary.json").read_text())
    assert on_disk["records"] == summary.records
    assert on_disk["faults_total"] == len(summary.injected_faults) == len(faults_of(landing))
    # record counts match the files (unreadable files excluded)
    unreadable = {f["file"] for f in summary.injected_faults if f["rule"] == "file:unreadable"}
    counted: dict = collections.defaultdict(lambda: collections.defaultdict(int))
    for source, d, p in iter_files(landing):
        rel = p.relative_to(landing).as_posix()
        if rel in unreadable:
            continue
        if source == "traffic":
            n = pq.read_metadata(p).num_rows
        else:
            n = len(read_lines(landing, rel)) - (source == "ad_spend")
        counted[source][d] += n
    assert {s: dict(v) for s, v in counted.items()} == {s: v for s, v in summary.records.items() if v}


def test_every_file_parses_except_the_listed_broken_ones(faulty_landing):
    landing, summary = faulty_landing
    faults = summary.injected_faults
    malformed = {(f["file"], f["line"]) for f in faults if f["rule"] == "json:malformed"}
    unreadable = {f["file"] for f in faults if f["rule"] == "file:unreadable"}
    assert malformed and unreadable
    for source, _, p in iter_files(landing):
        rel = p.relative_to(landing).as_posix()
        if source in ("orders", "returns"):
            for i, line in enumerate(read_lines(landing, rel), start=1):
                if (rel, i) in malformed:
                    with pytest.raises(json.JSONDecodeError):
                        json.loads(line)
                else:
                    assert isinstance(json.loads(line), dict)
        elif source == "ad_spend":
            rows = list(csv.reader(io.StringIO(p.read_text(encoding="utf-8"))))
            assert rows[0][:2] == ["stat_date", "stat_hour"] and all(len(r) == len(rows[0]) for r in rows)
        elif rel in unreadable:
            with pytest.raises(pa.ArrowInvalid):
                pq.read_table(p)
        else:
            table = pq.read_table(p)
            assert table.schema.field("event_time").type == pa.timestamp("us", tz="UTC")
            assert table.schema.field("shown_price").type == pa.decimal128(18, 2)
            assert table.schema.names[:11] == [
                "event_id",
                "event_time",
                "user_id",
                "product_id",
                "spu_id",
                "merchant_id",
                "pool",
                "event_type",
                "campaign_id",
                "placement",
                "shown_price",
            ]


# ---- faults -------------------------------------------------------------------------------------


def test_faults_json_matches_an_independent_reading(faulty_landing):
    """Every record is quarantined / duplicate / accepted exactly as faults.json says, and every
    corrupted record breaks one rule only (a non-positive quantity necessarily also breaks the
    subsidy bound; quantity comes first)."""
    landing, _ = faulty_landing
    entries = faults_of(landing)
    expected = {(f["file"], f["line"]): f for f in entries}
    assert len(expected) == len(entries), "one entry per record"
    records = classify_landing(landing)
    seen = set()
    for r in records:
        f = expected.get((r.file, r.line))
        assert r.rule == (f["rule"] if f else None), (r.file, r.line, r.rule, f, r.raw)
        seen.add((r.file, r.line))
        if f and f["rule"] and f["rule"] != "duplicate" and not f["rule"].startswith(("file:", "json:")):
            allowed = 2 if f["fault"] == "non_positive_quantity" else 1
            assert len(r.all_rules) <= allowed, (f, r.all_rules)
    whole_file = {(f["file"], None) for f in entries if f["line"] is None}
    assert set(expected) <= seen | whole_file


def test_every_fault_kind_is_injected_and_volume_is_small(faulty_landing):
    landing, summary = faulty_landing
    entries = faults_of(landing)
    kinds = {(f["source"], f["fault"]) for f in entries}
    for source, ks in KINDS.items():
        for k in ks:
            assert (source, k.name) in kinds, (source, k.name)
    for extra in [
        ("orders", "late_record"),
        ("orders", "out_of_order_version"),
        ("orders", "superseded_version"),
        ("orders", "gzip_file"),
        ("returns", "return_before_order"),
        ("returns", "gzip_file"),
        ("ad_spend", "restatement"),
        ("ad_spend", "missing_column_spend"),
        ("ad_spend", "extra_column"),
        ("traffic", "late_record"),
        ("traffic", "truncated_parquet"),
        ("traffic", "extra_column"),
    ]:
        assert extra in kinds, extra
    rejected = sum(1 for f in entries if f["rule"] is not None and f["line"] is not None)
    total = sum(summary.total(s) for s in ("orders", "returns", "ad_spend", "traffic"))
    assert 0.003 < rejected / total < 0.015


def test_faults_json_spot_checks(faulty_landing):
    landing, _ = faulty_landing
    by_kind = collections.defaultdict(list)
    for f in faults_of(landing):
        by_kind[(f["source"], f["fault"])].append(f)

    def line_of(f):  # CSV: line numbers exclude the header
        return read_lines(landing, f["file"])[f["line"] - (0 if f["source"] == "ad_spend" else 1)]

    for f in by_kind[("orders", "unit_price_3_decimals")]:
        assert re.fullmatch(r"\d+\.\d{3}", json.loads(line_of(f))["unit_price"])
    for f in by_kind[("orders", "missing_order_id")]:
        assert "order_id" not in json.loads(line_of(f))
    for f in by_kind[("orders", "updated_at_without_offset")]:
        assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", json.loads(line_of(f))["updated_at"])
    for f in by_kind[("orders", "subsidy_not_below_amount")]:
        d = json.loads(line_of(f))
        assert float(d["platform_subsidy"]) >= d["quantity"] * float(d["unit_price"]) - 1e-9
    for f in by_kind[("orders", "duplicate_line")] + by_kind[("orders", "duplicate_line_other_file")]:
        line = line_of(f)
        earlier = [x for x in iter_files(landing) if x[0] == "orders" and x[1] == f["dt"]]
        before = []
        for _, _, p in earlier:
            rel = p.relative_to(landing).as_posix()
            lines = read_lines(landing, rel)
            before += lines[: f["line"] - 1] if rel == f["file"] else (lines if rel < f["file"] else [])
        assert line in before
    for f in by_kind[("returns", "refunded_without_refunded_at")]:
        d = json.loads(line_of(f))
        assert d["status"] == "refunded" and d["refunded_at"] is None
    for f in by_kind[("ad_spend", "clicks_above_impressions")]:
        row = line_of(f).split(",")
        assert int(row[6]) > int(row[5])
    for f in by_kind[("ad_spend", "missing_column_spend")]:
        assert "spend" not in read_lines(landing, f["file"])[0].split(",")
    for f in by_kind[("traffic", "ad_event_without_campaign")]:
        row = pq.read_table(landing / f["file"]).slice(f["line"] - 1, 1).to_pylist()[0]
        assert row["pool"] == "ad" and row["campaign_id"] is None
    for f in by_kind[("traffic", "duplicate_event")]:
        t = pq.read_table(landing / f["file"], columns=["event_id"])["event_id"].to_pylist()
        assert t[f["line"] - 1] in t[: f["line"] - 1]


def test_accepted_faults_mean_what_they_say(faulty_landing):
    landing, _ = faulty_landing
    entries = faults_of(landing)
    first_dt: dict[str, str] = {}
    versions = collections.defaultdict(list)
    for _, d, p in (x for x in iter_files(landing) if x[0] == "orders"):
        for line in read_lines(landing, p.relative_to(landing).as_posix()):
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue
            if "order_id" in rec:
                first_dt.setdefault(rec["order_id"], d)
                versions[rec["order_id"]].append((d, rec))
    checked = collections.Counter()
    for f in entries:
        if f["rule"] is not None or f["line"] is None:
            continue
        if f["source"] == "traffic":
            if f["fault"] == "late_record":
                row = pq.read_table(landing / f["file"]).slice(f["line"] - 1, 1).to_pylist()[0]
                assert row["event_time"].astimezone(SH).date() == dt.date.fromisoformat(
                    f["dt"]
                ) - dt.timedelta(2)
                checked[f["fault"]] += 1
            continue
        if f["source"] == "ad_spend":
            line = read_lines(landing, f["file"])[f["line"]]  # header excluded from line numbers
            if f["fault"] == "restatement":
                assert line.split(",")[0] < f["dt"]  # an earlier stat_date sent again
                checked[f["fault"]] += 1
            continue
        line = read_lines(landing, f["file"])[f["line"] - 1]
        rec = json.loads(line)
        if f["fault"] == "late_record":
            assert business_date(rec["paid_at"]) == dt.date.fromisoformat(f["dt"]) - dt.timedelta(2)
            assert first_dt[rec["order_id"]] == f["dt"]
        elif f["fault"] == "return_before_order":
            assert first_dt[rec["order_id"]] > f["dt"]
        elif f["fault"] == "out_of_order_version":
            newer = [
                v for d, v in versions[rec["order_id"]] if d < f["dt"] and v["updated_at"] > rec["updated_at"]
            ]
            assert newer, rec
        elif f["fault"] == "superseded_version":
            older = [
                v
                for d, v in versions[rec["order_id"]]
                if v["status"] == rec["status"]
                and dt.datetime.fromisoformat(v["updated_at"].replace("Z", "+00:00"))
                < dt.datetime.fromisoformat(rec["updated_at"].replace("Z", "+00:00"))
            ]
            assert older, rec
        elif f["fault"] == "extra_field":
            assert set(rec) - {
                "order_id",
                "user_id",
                "merchant_id",
                "product_id",
                "spu_id",
                "quantity",
                "unit_price",
                "platform_subsidy",
                "voucher_pool",
                "status",
                "paid_at",
                "updated_at",
                "return_id",
                "return_type",
                "reason_code",
                "requested_at",
                "refunded_at",
                "refund_amount",
            }
        checked[f["fault"]] += 1
    assert {
        "late_record",
        "return_before_order",
        "out_of_order_version",
        "superseded_version",
        "extra_field",
        "restatement",
    } <= set(checked)


def test_restatements_change_figures_of_an_earlier_row(faulty_landing):
    landing, _ = faulty_landing
    rows = {}
    for _, d, p in (x for x in iter_files(landing) if x[0] == "ad_spend"):
        rel = p.relative_to(landing).as_posix()
        lines = read_lines(landing, rel)
        if "spend" not in lines[0]:
            continue
        for i, line in enumerate(lines[1:], start=1):
            rows[(rel, i)] = (d, line.split(","))
    earlier = collections.defaultdict(list)
    for (_, _), (d, r) in sorted(rows.items(), key=lambda kv: kv[1][0]):
        earlier[tuple(r[:4])].append((d, r))
    restated = [f for f in faults_of(landing) if f["fault"] == "restatement"]
    assert restated
    for f in restated:
        d, r = rows[(f["file"], f["line"])]
        prev = [x for dd, x in earlier[tuple(r[:4])] if dd < d]
        assert prev and all(x[5:8] != r[5:8] for x in prev)


# ---- realistic content (clean data) -------------------------------------------------------------


def test_clean_run_has_no_faults_and_only_valid_records(tmp_path):
    path = tmp_path / "clean"
    summary = generate_landing(path, START, START + dt.timedelta(days=3), orders_per_day=150, seed=2)
    assert summary.injected_faults == [] and faults_of(path) == []
    rules = collections.Counter(r.rule for r in classify_landing(path))
    assert set(rules) == {None}, rules


def test_spec_field_rules_hold(clean_frames):
    o, r, s, t = (clean_frames[k] for k in ("orders", "returns", "ad_spend", "traffic"))
    amount = o["quantity"] * o["unit_price"].astype(float)
    subsidy = o["platform_subsidy"].astype(float)
    assert (o["quantity"] >= 1).all() and (subsidy >= 0).all() and (subsidy < amount).all()
    assert ((o["voucher_pool"].isna()) == (subsidy == 0)).all()
    assert o["unit_price"].str.fullmatch(r"\d+\.\d\d").all()
    assert ((r["status"] == "refunded") == r["refunded_at"].notna()).all()
    assert (s["clicks"].astype(int) <= s["impressions"].astype(int)).all() and (
        s["spend"].astype(float) >= 0
    ).all()
    assert ((t["pool"] == "ad") == t["campaign_id"].notna()).all()
    assert (t["shown_price"].astype(float) > 0).all()
    assert t["event_id"].is_unique
    # refunds of an order never exceed what the buyer paid
    ol = latest(o, "order_id").set_index("order_id")
    pay = ol["quantity"] * ol["unit_price"].astype(float) - ol["platform_subsidy"].astype(float)
    refunds = (
        latest(r, "return_id")
        .assign(a=lambda x: x["refund_amount"].astype(float))
        .groupby("order_id")["a"]
        .sum()
    )
    assert (refunds <= pay.reindex(refunds.index) + 1e-9).all()
    # an ad event's campaign promotes that very product (the ad platform's report agrees)
    promoted = s.drop_duplicates("campaign_id").set_index("campaign_id")["product_id"]
    ads = t[t["pool"] == "ad"]
    known = ads["campaign_id"].isin(promoted.index)
    assert known.mean() > 0.95
    same = ads[known]["product_id"].values == promoted.reindex(ads[known]["campaign_id"]).values
    discounted = ads[known]["shown_price"].astype(float).values  # re-exposures may show a discount
    assert same.all(), discounted[~same][:5]


def test_attribution_mix_has_all_three_pools(clean_frames):
    o = latest(clean_frames["orders"], "order_id")
    a = attribution(o, clean_frames["traffic"])
    share = a["attributed_pool"].value_counts(normalize=True)
    for pool in ("ad", "organic", "direct"):
        assert 0.2 < share[pool] < 0.5, share
    # ad and organic click of the same order at the identical instant: the tie goes to ad although the
    # organic click has the smaller event_id
    clicks = clean_frames["traffic"]
    clicks = clicks[clicks["event_type"] == "click"]
    ad_won = a.loc[a["attributed_pool"] == "ad", ["order_id", "event_id"]].merge(clicks, on="event_id")
    ties = ad_won.merge(
        clicks[clicks["pool"] == "organic"], on=["user_id", "product_id", "event_time"], suffixes=("", "_org")
    )
    assert len(ties) > 0 and (ties["event_id_org"] < ties["event_id"]).all()


def test_lower_price_reexposure_raises_return_rate(clean_frames):
    o = latest(clean_frames["orders"], "order_id")
    r = latest(clean_frames["returns"], "return_id")
    rx = reexposure(o, r, clean_frames["traffic"])
    rx = rx[rx["paid_at"] < pd.Timestamp("2026-11-15", tz="Asia/Shanghai")]  # returns had time to land
    rx["returned"] = rx["order_id"].isin(r.loc[r["status"] == "refunded", "order_id"])
    rates = rx.groupby("reexposure")["returned"].mean()
    counts = rx["reexposure"].value_counts()
    assert set(counts.index) == {"none", "ad", "organic", "both"}
    assert (counts.drop("none") > 20).all(), counts
    assert 0.15 < 1 - counts["none"] / counts.sum() < 0.45
    for pool in ("ad", "organic", "both"):
        assert rates[pool] > 2 * rates["none"], rates
    reasons = r.merge(rx[["order_id", "reexposure"]], on="order_id")
    cheaper = reasons.groupby(reasons["reexposure"] != "none")["reason_code"].apply(
        lambda x: (x == "found_cheaper").mean()
    )
    assert cheaper[True] > 0.5 > 0.2 > cheaper[False]


def test_orders_timestamps_and_status_progression(clean_frames, clean_landing):
    landing, summary = clean_landing
    raw = []
    for _, d, p in (x for x in iter_files(landing) if x[0] == "orders"):
        raw += [(d, json.loads(x)) for x in read_lines(landing, p.relative_to(landing).as_posix())]
    paid = [rec["paid_at"] for _, rec in raw if rec["paid_at"]]
    utc = [x for x in paid if x.endswith(("Z", "+00:00"))]
    assert 0.05 < len(utc) / len(paid) < 0.2
    assert any(x.endswith("Z") for x in utc) and any(x.endswith("+00:00") for x in utc)
    assert any(business_date(x) != dt.date.fromisoformat(x[:10]) for x in utc)  # UTC date != business date
    assert any("." in rec["updated_at"] for _, rec in raw)  # some with milliseconds
    o = latest(clean_frames["orders"], "order_id")
    unpaid = o["paid_at"].isna()
    assert 0.015 < unpaid.mean() < 0.05 and (o.loc[unpaid, "status"] == "cancelled").all()
    assert set(o["status"]) == {"paid", "shipped", "delivered", "completed", "cancelled"}
    # a later version lands in a later dt with a later updated_at
    first = {}
    later = 0
    for d, rec in raw:
        if rec["order_id"] in first and first[rec["order_id"]][0] < d:
            assert rec["updated_at"] != first[rec["order_id"]][1]["updated_at"]
            later += 1
        first.setdefault(rec["order_id"], (d, rec))
    assert later > len(first)
    assert (o["quantity"] == 1).mean() > 0.7 and o["quantity"].max() == 3
    vouchers = o[o["voucher_pool"].notna()]
    assert 0.05 < len(vouchers) / len(o) < 0.3 and set(vouchers["voucher_pool"]) == {"ad", "organic"}
    created = sum(v["orders"] for v in summary.cohorts.values())
    assert 0.999 * created <= len(o) <= created  # a few of the last day land after the range


def test_returns_structure(clean_frames):
    r_all = clean_frames["returns"]
    r = latest(r_all, "return_id")
    o = latest(clean_frames["orders"], "order_id").set_index("order_id")
    assert set(r["reason_code"]) == {
        "found_cheaper",
        "quality_issue",
        "not_as_described",
        "wrong_item",
        "late_delivery",
        "changed_mind",
        "other",
    }
    assert set(r["return_type"]) == {"refund_only", "return_and_refund"}
    assert {"requested", "approved", "rejected", "refunded", "cancelled"} <= set(r_all["status"])
    paid_orders = o["paid_at"].notna()
    early = o[paid_orders & (o["paid_at"] < pd.Timestamp("2026-11-12", tz="UTC"))]
    rate = early.index.isin(r["order_id"]).mean()
    assert 0.07 < rate < 0.14, rate
    assert (r.groupby("order_id").size() > 1).any()  # several returns per order
    pay = o["quantity"] * o["unit_price"].astype(float) - o["platform_subsidy"].astype(float)
    partial = r["refund_amount"].astype(float).values < pay.reindex(r["order_id"]).values - 0.005
    assert partial.any() and not partial.all()
    # reversals: a refunded return later cancelled, refunded_at gone
    was_refunded = set(r_all.loc[r_all["status"] == "refunded", "return_id"])
    reversed_ = r[(r["status"] == "cancelled") & r["return_id"].isin(was_refunded)]
    assert len(reversed_) > 0 and reversed_["refunded_at"].isna().all()
    refunded = r[r["status"] == "refunded"].merge(o[["paid_at"]], left_on="order_id", right_index=True)
    days = (refunded["refunded_at"] - refunded["paid_at"]).dt.total_seconds() / 86400
    assert (days > 15).any() and (days > 30).any() and (days <= 15).mean() > 0.8
    # versions of a return land on the day of their updated_at
    ok = r_all["updated_at"].dt.tz_convert("Asia/Shanghai").dt.strftime("%Y-%m-%d") == r_all["dt"]
    assert ok.all()


def test_ad_spend_and_traffic_structure(clean_frames):
    s, t = clean_frames["ad_spend"], clean_frames["traffic"]
    s = s.astype({"stat_hour": int, "impressions": int, "clicks": int})
    s["spend"] = s["spend"].astype(float)
    assert s["stat_hour"].between(0, 23).all() and s["stat_hour"].nunique() == 24
    assert (s["stat_date"] == s["dt"]).all()
    with_clicks = s[s["clicks"] > 0]
    cpc = (with_clicks["spend"] * 100).round() / with_clicks["clicks"]
    assert ((cpc - cpc.round()).abs() < 1e-9).all()  # spend = clicks x a whole-fen CPC
    # spend is about a tenth to a third of ad-attributed GMV
    o = latest(clean_frames["orders"], "order_id")
    a = attribution(o, t).merge(o[["order_id", "quantity", "unit_price"]], on="order_id")
    gmv_ad = (
        a.loc[a["attributed_pool"] == "ad", "quantity"]
        * a.loc[a["attributed_pool"] == "ad", "unit_price"].astype(float)
    ).sum()
    assert 2 < gmv_ad / s["spend"].sum() < 20
    # campaign-days with spend and no attributed order exist
    a["d"] = a["paid_at"].dt.tz_convert("Asia/Shanghai").dt.strftime("%Y-%m-%d")
    attributed = set(zip(a["d"], a["campaign_id"], strict=True))
    days = s[s["spend"] > 0].groupby(["stat_date", "campaign_id"]).size().index
    assert sum(k not in attributed for k in days) > 0
    # traffic: both pools and event types, all placements, ~20 events per order
    assert set(t["pool"]) == {"ad", "organic"} and set(t["event_type"]) == {"impression", "click"}
    assert set(t["placement"]) == {"feed", "live", "search", "mall"}
    assert 15 < len(t) / len(o) < 25
    # merchants of skewed sizes; the same SPU sold by several merchants at different prices
    sizes = o["merchant_id"].value_counts()
    assert sizes.iloc[0] > 5 * sizes.median()
    spu = (
        o.drop_duplicates("product_id")
        .groupby("spu_id")
        .agg(m=("merchant_id", "nunique"), p=("unit_price", "nunique"))
    )
    assert ((spu["m"] > 1) & (spu["p"] > 1)).sum() > 20
