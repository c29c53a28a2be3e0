"""Accepted landing records as pandas frames, and small SPEC computations used by the generator tests.

Records listed in ``_generator/faults.json`` with a rule (quarantined or duplicate) are left out;
``test_faults_json_matches_an_independent_reading`` checks that list against ``rules.py``.
"""

from __future__ import annotations

import gzip
import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from .rules import iter_files


def load_accepted(landing: str | Path) -> dict[str, pd.DataFrame]:
    landing = Path(landing)
    faults = json.loads((landing / "_generator" / "faults.json").read_text())
    bad_lines = {(f["file"], f["line"]) for f in faults if f["rule"] is not None and f["line"] is not None}
    bad_files = {f["file"] for f in faults if f["rule"] is not None and f["line"] is None}
    bad_files |= {f["file"] for f in faults if (f["rule"] or "").startswith("file:")}
    parts: dict[str, list[pd.DataFrame]] = {s: [] for s in ("orders", "returns", "ad_spend", "traffic")}
    for source, dt_, path in iter_files(landing):
        rel = path.relative_to(landing).as_posix()
        if rel in bad_files:
            continue
        if source == "traffic":
            df = pq.read_table(path).to_pandas()
        else:
            data = path.read_bytes()
            if path.name.endswith(".gz"):
                data = gzip.decompress(data)
            text = data.decode()
            if source == "ad_spend":
                df = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
            else:
                df = pd.DataFrame([json.loads(x) for x in text.split("\n")[:-1]] if text else [])
        df["dt"], df["file"], df["line"] = dt_, rel, np.arange(1, len(df) + 1)
        keep = [(rel, int(i)) not in bad_lines for i in df["line"]]
        parts[source].append(df[keep])
    out = {s: pd.concat(v, ignore_index=True) if v else pd.DataFrame() for s, v in parts.items()}
    for s, cols in {
        "orders": ["paid_at", "updated_at"],
        "returns": ["requested_at", "refunded_at", "updated_at"],
    }.items():
        for c in cols:
            out[s][c] = pd.to_datetime(out[s][c], utc=True, format="ISO8601")
    return out


def latest(df: pd.DataFrame, key: str) -> pd.DataFrame:
    """Latest version per key: latest updated_at, then later dt, file, line."""
    return df.sort_values(["updated_at", "dt", "file", "line"]).groupby(key, as_index=False).tail(1)


def attribution(orders_latest: pd.DataFrame, traffic: pd.DataFrame, window_days: int = 7) -> pd.DataFrame:
    """SPEC 4: attributed pool and campaign of every paid order."""
    paid = orders_latest[orders_latest["paid_at"].notna()][["order_id", "user_id", "product_id", "paid_at"]]
    clicks = traffic[traffic["event_type"] == "click"][
        ["event_id", "event_time", "user_id", "product_id", "pool", "campaign_id"]
    ]
    m = paid.merge(clicks, on=["user_id", "product_id"])
    m = m[
        (m["event_time"] >= m["paid_at"] - pd.Timedelta(days=window_days)) & (m["event_time"] <= m["paid_at"])
    ]
    m = m.assign(pool_rank=(m["pool"] != "ad").astype(int))
    m = m.sort_values(
        ["order_id", "event_time", "pool_rank", "event_id"], ascending=[True, False, True, True]
    )
    best = m.groupby("order_id", as_index=False).head(1)[["order_id", "pool", "campaign_id", "event_id"]]
    out = paid.merge(best, on="order_id", how="left")
    out["attributed_pool"] = out["pool"].fillna("direct")
    return out


def reexposure(
    orders_latest: pd.DataFrame, returns_latest: pd.DataFrame, traffic: pd.DataFrame, window_days: int = 7
) -> pd.DataFrame:
    """SPEC 9: ``reexposure`` (none / ad / organic / both) of every paid order."""
    paid = orders_latest[orders_latest["paid_at"].notna()][
        ["order_id", "user_id", "spu_id", "unit_price", "paid_at"]
    ].copy()
    paid["price"] = paid["unit_price"].astype(float)
    first_req = returns_latest.groupby("order_id")["requested_at"].min().rename("first_requested")
    paid = paid.merge(first_req, on="order_id", how="left")
    ev = traffic[["user_id", "spu_id", "event_time", "pool", "shown_price"]].copy()
    ev["shown"] = ev["shown_price"].astype(float)
    m = paid.merge(ev, on=["user_id", "spu_id"])
    m = m[
        (m["shown"] < m["price"])
        & (m["event_time"] > m["paid_at"])
        & (m["event_time"] <= m["paid_at"] + pd.Timedelta(days=window_days))
        & (m["first_requested"].isna() | (m["event_time"] < m["first_requested"]))
    ]
    pools = m.groupby("order_id")["pool"].agg(lambda p: "both" if p.nunique() == 2 else p.iloc[0])
    paid["reexposure"] = paid["order_id"].map(pools).fillna("none")
    return paid
