"""SPEC §7 settlement files: exact bytes, manifest, atomic regeneration, verification."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from decimal import Decimal

import pytest

from assets.finance import settlement_files as sf
from assets.finance.schemas import LEDGER_SCHEMA

UTC = dt.UTC
D = dt.date(2026, 11, 5)


def entry(entry_type, merchant, campaign, order, ret, paid_at, refunded_at, amounts, day=D):
    order_amount, pay_amount, refund_amount, fee, refund = (Decimal(a) for a in amounts)
    return {
        "settlement_date": day, "entry_type": entry_type, "merchant_id": merchant, "campaign_id": campaign,
        "order_id": order, "return_id": ret, "paid_at": paid_at, "refunded_at": refunded_at,
        "order_amount": order_amount, "pay_amount": pay_amount, "refund_amount": refund_amount,
        "allocated_ad_fee": fee, "ad_fee_refund": refund,
    }  # fmt: skip


PAID = dt.datetime(2026, 11, 3, 16, 30, 0, 123456, tzinfo=UTC)  # 2026-11-04 00:30:00.123456 in Shanghai
ROWS = [
    entry("refund", "m2", "c1", "o1", "r1", PAID, dt.datetime(2026, 11, 5, 2, tzinfo=UTC),
          ("100.00", "80.00", "40.00", "50.00", "25.00")),
    entry("reversal", "m2", "c1", "o1", "r0", PAID, dt.datetime(2026, 11, 4, 2, tzinfo=UTC),
          ("100.00", "80.00", "30.00", "50.00", "-15.00")),
    entry("refund", 'm1,"x"', None, "o9", "r9", dt.datetime(2026, 11, 1, 0, tzinfo=UTC),
          dt.datetime(2026, 11, 2, 0, tzinfo=UTC), ("10.00", "10.00", "10.00", "0.50", "0.50")),
]  # fmt: skip

HEADER = (
    "settlement_date,entry_type,merchant_id,campaign_id,order_id,return_id,paid_at,refunded_at,"
    "order_amount,pay_amount,refund_amount,allocated_ad_fee,ad_fee_refund\n"
)
EXPECTED_REFUNDS = (
    HEADER
    # sorted by merchant_id ('m1,"x"' < 'm2'), order_id, return_id (r0 < r1), entry_type;
    # a comma/quote is quoted RFC 4180 style, null campaign -> empty field
    + '2026-11-05,refund,"m1,""x""",,o9,r9,2026-11-01T08:00:00+08:00,2026-11-02T08:00:00+08:00,'
    "10.00,10.00,10.00,0.50,0.50\n"
    # 16:30:00.123456Z -> 00:30:00+08:00 the next day, fraction dropped
     + "2026-11-05,reversal,m2,c1,o1,r0,2026-11-04T00:30:00+08:00,2026-11-04T10:00:00+08:00,"
    "100.00,80.00,30.00,50.00,-15.00\n"
    + "2026-11-05,refund,m2,c1,o1,r1,2026-11-04T00:30:00+08:00,2026-11-05T10:00:00+08:00,"
    "100.00,80.00,40.00,50.00,25.00\n"
)
# m2: -15.00 + 25.00 = 10.00 over 2 entries; day total 0.50 + 10.00 = 10.50
EXPECTED_SUMMARY = (
    'settlement_date,merchant_id,entries,ad_fee_refund\n2026-11-05,"m1,""x""",1,0.50\n2026-11-05,m2,2,10.00\n'
)


def _files(root, day=D):
    folder = os.path.join(root, f"dt={day.isoformat()}")
    return {name: open(os.path.join(folder, name), "rb").read() for name in sorted(os.listdir(folder))}


def test_publish_exact_bytes_and_manifest(tmp_path):
    root = str(tmp_path / "settlements")
    manifest = sf.publish_day(root, D, ROWS, source_tables={"finance/ad_fee_refund_ledger": 7})
    assert manifest["status"] == "published"
    files = _files(root)
    assert sorted(files) == [
        "ad_fee_refunds_2026-11-05.csv",
        "manifest.json",
        "merchant_summary_2026-11-05.csv",
    ]
    assert files["ad_fee_refunds_2026-11-05.csv"] == EXPECTED_REFUNDS.encode("utf-8")
    assert files["merchant_summary_2026-11-05.csv"] == EXPECTED_SUMMARY.encode("utf-8")
    assert not files["ad_fee_refunds_2026-11-05.csv"].startswith(b"\xef\xbb\xbf")
    assert b"\r" not in files["ad_fee_refunds_2026-11-05.csv"]

    written = json.loads(files["manifest.json"])
    assert written["date"] == "2026-11-05"
    assert written["files"] == [
        {
            "name": "ad_fee_refunds_2026-11-05.csv",
            "rows": 3,
            "sha256": hashlib.sha256(EXPECTED_REFUNDS.encode()).hexdigest(),
            "amount_total": "10.50",
        },
        {
            "name": "merchant_summary_2026-11-05.csv",
            "rows": 2,
            "sha256": hashlib.sha256(EXPECTED_SUMMARY.encode()).hexdigest(),
            "amount_total": "10.50",
        },
    ]
    assert written["run"]["source_tables"] == {"finance/ad_fee_refund_ledger": 7}
    assert written["run"]["generated_at"].endswith("+08:00")
    assert sf.verify_day(root, D) == []
    # nothing but the day's folder is left behind (no temporary directories)
    assert os.listdir(root) == ["dt=2026-11-05"]


def test_header_only_day(tmp_path):
    root = str(tmp_path)
    day = dt.date(2026, 11, 6)
    sf.publish_day(root, day, [])
    files = _files(root, day)
    assert files["ad_fee_refunds_2026-11-06.csv"] == HEADER.encode()
    assert files["merchant_summary_2026-11-06.csv"] == b"settlement_date,merchant_id,entries,ad_fee_refund\n"
    manifest = json.loads(files["manifest.json"])
    assert [(f["rows"], f["amount_total"]) for f in manifest["files"]] == [(0, "0.00"), (0, "0.00")]
    assert sf.verify_day(root, day) == []
    assert sf.show_day(root, day)["entries"] == 0


def test_regeneration_is_byte_identical(tmp_path):
    root = str(tmp_path)
    first = sf.publish_day(root, D, ROWS, source_tables={"t": 1}, generated_at="2026-11-05T23:00:00+08:00")
    before = _files(root)
    # same rows in another order, another run
    again = sf.publish_day(
        root, D, list(reversed(ROWS)), source_tables={"t": 2}, generated_at="2026-11-06T09:00:00+08:00"
    )
    after = _files(root)
    assert again["status"] == "unchanged"
    for name in ("ad_fee_refunds_2026-11-05.csv", "merchant_summary_2026-11-05.csv"):
        assert after[name] == before[name]
    assert json.loads(after["manifest.json"])["files"] == first["files"]
    run = json.loads(after["manifest.json"])["run"]
    assert run == {
        "generated_at": "2026-11-06T09:00:00+08:00",
        "first_generated_at": "2026-11-05T23:00:00+08:00",
        "source_tables": {"t": 2},
    }


def test_regeneration_that_differs_fails_and_leaves_files(tmp_path):
    root = str(tmp_path)
    sf.publish_day(root, D, ROWS)
    before = _files(root)
    changed = [dict(ROWS[0], ad_fee_refund=Decimal("24.99")), *ROWS[1:]]
    with pytest.raises(sf.SettlementMismatchError, match="ad_fee_refunds_2026-11-05.csv"):
        sf.publish_day(root, D, changed)
    assert _files(root) == before
    assert os.listdir(root) == ["dt=2026-11-05"]


def test_verify_detects_tampering(tmp_path):
    root = str(tmp_path)
    sf.publish_day(root, D, ROWS)
    folder = tmp_path / "dt=2026-11-05"
    refunds = folder / "ad_fee_refunds_2026-11-05.csv"
    refunds.write_bytes(refunds.read_bytes().replace(b",25.00\n", b",35.00\n"))
    problems = sf.verify_day(root, D)
    assert problems == [
        "ad_fee_refunds_2026-11-05.csv: sha256 differs from the manifest",
        "ad_fee_refunds_2026-11-05.csv: amount total 20.50, manifest says 10.50",
    ]
    (folder / "extra.csv").write_text("x\n")
    (folder / "merchant_summary_2026-11-05.csv").unlink()
    problems = sf.verify_day(root, D)
    assert "extra.csv: present but not in the manifest" in problems
    assert "merchant_summary_2026-11-05.csv: listed in the manifest but missing" in problems
    # a dropped line changes the row count too
    refunds.write_bytes(EXPECTED_REFUNDS.rsplit("2026-11-05,refund,m2", 1)[0].encode())
    assert "ad_fee_refunds_2026-11-05.csv: 2 rows, manifest says 3" in sf.verify_day(root, D)
    assert sf.verify_day(root, dt.date(2026, 11, 7)) == [
        "2026-11-07: not published (" + root + "/dt=2026-11-07 missing)"
    ]


def test_list_and_show(tmp_path):
    root = str(tmp_path)
    sf.publish_day(root, D, ROWS)
    sf.publish_day(root, dt.date(2026, 11, 4), [])
    listed = sf.list_published(root)
    assert [(d["date"], d["entries"], d["merchants"], d["amount_total"]) for d in listed] == [
        ("2026-11-04", 0, 0, "0.00"),
        ("2026-11-05", 3, 2, "10.50"),
    ]
    shown = sf.show_day(root, D)
    assert shown["entries"] == 3 and shown["ad_fee_refund"] == "10.50"
    assert [(m["merchant_id"], m["entries"], m["ad_fee_refund"]) for m in shown["merchants"]] == [
        ('m1,"x"', 1, "0.50"),
        ("m2", 2, "10.00"),
    ]
    assert [r["return_id"] for r in shown["merchants"][1]["rows"]] == ["r0", "r1"]
    assert "merchant m2: 2 entries, ad_fee_refund 10.00" in sf.format_show(shown)


def test_amount_and_timestamp_formatting():
    assert sf.format_amount(Decimal("-0.00")) == "0.00"
    assert sf.format_amount(Decimal("1234567.5")) == "1234567.50"
    assert sf.format_amount(Decimal("-3")) == "-3.00"
    with pytest.raises(ValueError):
        sf.format_timestamp(dt.datetime(2026, 11, 5, 12))  # naive: refused
    assert (
        sf.format_timestamp(dt.datetime(2026, 12, 31, 16, 0, 0, 999999, tzinfo=UTC))
        == "2027-01-01T00:00:00+08:00"
    )


def test_ledger_day_rows_from_spark(spark):
    row = ROWS[0]
    df = spark.createDataFrame([tuple(row[f.name] for f in LEDGER_SCHEMA.fields)], LEDGER_SCHEMA)
    rows = sf.ledger_day_rows(df, D)
    assert len(rows) == 1
    # epoch seconds, rendered in Shanghai whatever the driver's time zone; fractions dropped
    assert sf.format_timestamp(rows[0]["paid_at"]) == "2026-11-04T00:30:00+08:00"
    assert (
        sf.render_refunds_csv(rows)
        == (
            HEADER + "2026-11-05,refund,m2,c1,o1,r1,2026-11-04T00:30:00+08:00,2026-11-05T10:00:00+08:00,"
            "100.00,80.00,40.00,50.00,25.00\n"
        ).encode()
    )
    assert sf.ledger_day_rows(df, dt.date(2026, 11, 6)) == []
