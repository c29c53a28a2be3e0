"""Build bronze-shaped frames from a few records, as the readers would."""

from __future__ import annotations

import datetime as dt
import json

from assets.ingest.bronze import BRONZE_SCHEMA

DAY = dt.date(2026, 11, 3)


def bronze_frame(spark, records, *, day=DAY, source_file="orders/dt=2026-11-03/a.jsonl"):
    """``records``: dicts (become JSON lines) or raw strings (landed as they are)."""
    rows = []
    for i, rec in enumerate(records, start=1):
        raw = rec if isinstance(rec, str) else json.dumps(rec)
        try:
            parsed = json.loads(raw)
            fields = (
                {k: (v if v is None or isinstance(v, str) else json.dumps(v)) for k, v in parsed.items()}
                if isinstance(parsed, dict)
                else None
            )
        except json.JSONDecodeError:
            fields = None
        rows.append((day, source_file, i, raw, fields, None if fields is not None else "json:malformed"))
    return spark.createDataFrame(rows, BRONZE_SCHEMA)


def order(**overrides):
    base = {
        "order_id": "o1",
        "user_id": "u1",
        "merchant_id": "m1",
        "product_id": "p1",
        "spu_id": "s1",
        "quantity": 2,
        "unit_price": "59.90",
        "platform_subsidy": "0.00",
        "voucher_pool": None,
        "status": "paid",
        "paid_at": "2026-11-03T10:00:00+08:00",
        "updated_at": "2026-11-03T10:00:00+08:00",
    }
    base.update(overrides)
    return base
