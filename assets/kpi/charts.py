"""The KPI charts of the Dagster UI: GMV by pool, ROI and net ROI, return rate with and without
lower-price re-exposure, over the 30 days of one ``as_of = D`` snapshot.

Two kinds of output, both for the asset's page:
- numbers of the newest cohort (``dt = D``) and of the 30-day window, emitted as numeric
  materialization metadata: Dagster plots numeric metadata across partitions under *Plots*;
- a per-day chart as markdown (a table with a text bar per day), shown with the materialization.

Spark only aggregates the snapshot to at most ``days`` rows (one per business day); everything
else is plain Python on those rows, so it is tested with hand-computed values.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

CHART_DAYS = 30
BAR_WIDTH = 20
POOLS = ("ad", "organic", "direct")
POOL_MARKS = {"ad": "█", "organic": "▓", "direct": "░"}  # stacked GMV bar: ad, organic, direct
RATE_MARKS = {"not_reexposed": "▒", "reexposed": "█"}
_RATIO = Decimal("0.000001")


@dataclass(frozen=True)
class DayFigures:
    """One business day of the snapshot (money as exact Decimal, ratios DECIMAL(18,6) or None)."""

    dt: dt.date
    gmv_ad: Decimal = Decimal("0.00")
    gmv_organic: Decimal = Decimal("0.00")
    gmv_direct: Decimal = Decimal("0.00")
    roi: Decimal | None = None
    net_roi: Decimal | None = None
    orders_not_reexposed: int = 0
    returned_not_reexposed: int = 0
    orders_reexposed: int = 0
    returned_reexposed: int = 0

    @property
    def gmv_by_pool(self) -> dict[str, Decimal]:
        return {"ad": self.gmv_ad, "organic": self.gmv_organic, "direct": self.gmv_direct}

    @property
    def return_rate_not_reexposed(self) -> Decimal | None:
        return count_ratio(self.returned_not_reexposed, self.orders_not_reexposed)

    @property
    def return_rate_reexposed(self) -> Decimal | None:
        return count_ratio(self.returned_reexposed, self.orders_reexposed)


def count_ratio(numerator: int, denominator: int) -> Decimal | None:
    """numerator / denominator rounded half-up to 6 decimals (as the gold ratios); None over 0."""
    if not denominator:
        return None
    return (Decimal(numerator) / Decimal(denominator)).quantize(_RATIO, rounding=ROUND_HALF_UP)


# --- Spark: the snapshot aggregated to one row per day (at most `days` rows reach the driver) ----


def _window(df: DataFrame, as_of: dt.date, days: int) -> DataFrame:
    return df.filter(F.col("dt").between(F.lit(as_of - dt.timedelta(days=days - 1)), F.lit(as_of)))


def collect_day_figures(
    kpi_daily: DataFrame, return_attribution_daily: DataFrame, as_of: dt.date, days: int = CHART_DAYS
) -> list[DayFigures]:
    """Per day of ``[D - days + 1, D]`` of the two ``as_of = D`` snapshots, oldest first."""
    kpi_rows = (
        _window(kpi_daily, as_of, days)
        .groupBy("dt")  # one row per dt already; the group makes the bound explicit
        .agg(
            F.first("gmv_ad").alias("gmv_ad"),
            F.first("gmv_organic").alias("gmv_organic"),
            F.first("gmv_direct").alias("gmv_direct"),
            F.first("roi").alias("roi"),
            F.first("net_roi").alias("net_roi"),
        )
        .collect()
    )
    reexposed = F.col("reexposure") != F.lit("none")
    return_rows = (
        _window(return_attribution_daily, as_of, days)
        .groupBy("dt")
        .agg(
            F.sum(F.when(~reexposed, F.col("orders")).otherwise(0)).alias("orders_not_reexposed"),
            F.sum(F.when(~reexposed, F.col("returned_orders")).otherwise(0)).alias("returned_not_reexposed"),
            F.sum(F.when(reexposed, F.col("orders")).otherwise(0)).alias("orders_reexposed"),
            F.sum(F.when(reexposed, F.col("returned_orders")).otherwise(0)).alias("returned_reexposed"),
        )
        .collect()
    )
    return merge_day_rows([r.asDict() for r in kpi_rows], [r.asDict() for r in return_rows])


def merge_day_rows(kpi_rows: list[dict], return_rows: list[dict]) -> list[DayFigures]:
    """Join the per-day rows of both tables on ``dt`` (a day missing in one has zeros/None there)."""
    by_day: dict[dt.date, dict] = {}
    for row in kpi_rows:
        by_day.setdefault(row["dt"], {}).update(
            {k: row[k] for k in ("gmv_ad", "gmv_organic", "gmv_direct", "roi", "net_roi") if row[k] is not None}
        )
    for row in return_rows:
        by_day.setdefault(row["dt"], {}).update(
            {
                k: int(row[k] or 0)
                for k in ("orders_not_reexposed", "returned_not_reexposed", "orders_reexposed", "returned_reexposed")
            }
        )
    return [DayFigures(dt=day, **values) for day, values in sorted(by_day.items())]


# --- plain Python: the figures and the charts -----------------------------------------------------


def newest_cohort(days: list[DayFigures], as_of: dt.date) -> DayFigures:
    """The figures of the cohort ``dt = D`` (zeros when the snapshot has no row for D)."""
    return next((d for d in days if d.dt == as_of), DayFigures(dt=as_of))


def window_return_rates(days: list[DayFigures]) -> dict[str, int | Decimal | None]:
    """Return rates over the whole window (Σ returned / Σ orders), with and without re-exposure."""
    orders_no = sum(d.orders_not_reexposed for d in days)
    returned_no = sum(d.returned_not_reexposed for d in days)
    orders_re = sum(d.orders_reexposed for d in days)
    returned_re = sum(d.returned_reexposed for d in days)
    return {
        "orders_not_reexposed": orders_no,
        "returned_not_reexposed": returned_no,
        "return_rate_not_reexposed": count_ratio(returned_no, orders_no),
        "orders_reexposed": orders_re,
        "returned_reexposed": returned_re,
        "return_rate_reexposed": count_ratio(returned_re, orders_re),
    }


def bar(value: Decimal | int | None, scale: Decimal | int | None, mark: str = "█", width: int = BAR_WIDTH) -> str:
    """``value / scale`` of ``width`` characters, rounded half-up; empty for 0, None or no scale."""
    if value is None or not scale or value <= 0:
        return ""
    length = (Decimal(value) * width / Decimal(scale)).quantize(Decimal(1), rounding=ROUND_HALF_UP)
    return mark * int(min(length, width))


def stacked_bar(parts: dict[str, Decimal], scale: Decimal, marks: dict[str, str], width: int = BAR_WIDTH) -> str:
    """One bar of ``width`` at ``scale``, split into parts: each part's end is rounded (cumulative
    rounding), so the parts add up to the bar of the total."""
    if not scale or scale <= 0:
        return ""
    out, drawn, running = [], 0, Decimal(0)
    for name, value in parts.items():
        running += max(value, Decimal(0))
        end = int((running * width / scale).quantize(Decimal(1), rounding=ROUND_HALF_UP))
        out.append(marks[name] * (min(end, width) - drawn))
        drawn = min(end, width)
    return "".join(out)


def _code(text: str) -> str:
    """A code span (monospace keeps bars aligned); nothing for an empty bar."""
    return f"`{text}`" if text else ""


def _fmt(value: Decimal | None) -> str:
    return "–" if value is None else str(value)


def _pct(value: Decimal | None) -> str:
    return "–" if value is None else f"{(value * 100).quantize(Decimal('0.01'), rounding=ROUND_HALF_UP)}%"


def gmv_roi_chart(days: list[DayFigures]) -> str:
    """Markdown: per day, GMV by pool (stacked bar scaled to the largest day) with ROI and net ROI."""
    if not days:
        return "_no days in the snapshot_"
    scale = max(sum(d.gmv_by_pool.values()) for d in days)
    legend = ", ".join(f"{mark} {pool}" for pool, mark in POOL_MARKS.items())
    lines = [
        f"GMV by pool ({legend}; full bar = {scale}), ROI and net ROI",
        "",
        "| dt | gmv_ad | gmv_organic | gmv_direct | GMV by pool | roi | net_roi |",
        "|---|---:|---:|---:|:---|---:|---:|",
    ]
    for d in days:
        lines.append(
            f"| {d.dt.isoformat()} | {d.gmv_ad} | {d.gmv_organic} | {d.gmv_direct} | "
            f"{_code(stacked_bar(d.gmv_by_pool, scale, POOL_MARKS))} | {_fmt(d.roi)} | {_fmt(d.net_roi)} |"
        )
    return "\n".join(lines)


def return_rate_chart(days: list[DayFigures]) -> str:
    """Markdown: per day, return rate of orders not re-exposed vs re-exposed cheaper (bars on one scale)."""
    if not days:
        return "_no days in the snapshot_"
    rates = [r for d in days for r in (d.return_rate_not_reexposed, d.return_rate_reexposed) if r is not None]
    scale = max(rates, default=None)
    no, re = RATE_MARKS["not_reexposed"], RATE_MARKS["reexposed"]
    lines = [
        f"Return rate without ({no}) vs with ({re}) lower-price re-exposure (full bar = {_pct(scale)})",
        "",
        "| dt | not re-exposed | rate | | re-exposed cheaper | rate | |",
        "|---|---:|---:|:---|---:|---:|:---|",
    ]
    for d in days:
        lines.append(
            f"| {d.dt.isoformat()} | {d.returned_not_reexposed}/{d.orders_not_reexposed} | "
            f"{_pct(d.return_rate_not_reexposed)} | {_code(bar(d.return_rate_not_reexposed, scale, no))} | "
            f"{d.returned_reexposed}/{d.orders_reexposed} | "
            f"{_pct(d.return_rate_reexposed)} | {_code(bar(d.return_rate_reexposed, scale, re))} |"
        )
    return "\n".join(lines)


def _number(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


def kpi_daily_figures(days: list[DayFigures], as_of: dt.date) -> dict:
    """Plain values for ``gold/kpi_daily``: the newest cohort's GMV by pool, ROI and net ROI
    (floats to plot, exact strings alongside) and the markdown chart of the window."""
    today = newest_cohort(days, as_of)
    figures: dict = {}
    for pool, value in today.gmv_by_pool.items():
        figures[f"gmv_{pool}_of_D"] = float(value)
        figures[f"gmv_{pool}_of_D_exact"] = str(value)
    figures["roi_of_D"] = _number(today.roi)
    figures["net_roi_of_D"] = _number(today.net_roi)
    figures["chart_gmv_by_pool_roi"] = gmv_roi_chart(days)
    return figures


def return_attribution_figures(days: list[DayFigures], as_of: dt.date) -> dict:
    """Plain values for ``gold/return_attribution_daily``: return rates with and without re-exposure
    of the newest cohort and of the whole window, counts, and the markdown chart."""
    today = newest_cohort(days, as_of)
    window = window_return_rates(days)
    return {
        "return_rate_not_reexposed_of_D": _number(today.return_rate_not_reexposed),
        "return_rate_reexposed_of_D": _number(today.return_rate_reexposed),
        "return_rate_not_reexposed_window": _number(window["return_rate_not_reexposed"]),
        "return_rate_reexposed_window": _number(window["return_rate_reexposed"]),
        "orders_not_reexposed_window": window["orders_not_reexposed"],
        "returned_not_reexposed_window": window["returned_not_reexposed"],
        "orders_reexposed_window": window["orders_reexposed"],
        "returned_reexposed_window": window["returned_reexposed"],
        "chart_return_rate_reexposure": return_rate_chart(days),
    }


def kpi_chart_metadata(
    kpi_daily: DataFrame, return_attribution_daily: DataFrame, as_of: dt.date, days: int = CHART_DAYS
) -> dict[str, dict]:
    """``{table name: Dagster metadata}`` of the charts, from the two ``as_of = D`` snapshots.

    None-valued ratios (divisor 0) are left out, so a plot has no point rather than a fake 0.
    """
    from dagster import MetadataValue

    per_day = collect_day_figures(kpi_daily, return_attribution_daily, as_of, days)

    def to_metadata(figures: dict) -> dict:
        out = {}
        for key, value in figures.items():
            if value is None:
                continue
            if key.startswith("chart_"):
                out[key] = MetadataValue.md(value)
            elif isinstance(value, str):
                out[key] = MetadataValue.text(value)
            elif isinstance(value, int):
                out[key] = MetadataValue.int(value)
            else:
                out[key] = MetadataValue.float(value)
        return out

    return {
        "kpi_daily": to_metadata(kpi_daily_figures(per_day, as_of)),
        "return_attribution_daily": to_metadata(return_attribution_figures(per_day, as_of)),
    }
