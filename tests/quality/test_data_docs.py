"""Data Docs: GE's static site from the validation results the asset checks record."""

from __future__ import annotations

import pytest

from pipelines import cli
from quality.data_docs import build_data_docs, data_docs_dir
from quality.runner import record_validation, validate, validations_dir
from quality.suites import Suite, between, in_set, not_null


def _frame(spark):
    return spark.sql(
        "SELECT CAST(id AS STRING) AS order_id, CAST(id / 10 AS DECIMAL(18,2)) AS amount, "
        "IF(id % 2 = 0, 'paid', 'shipped') AS status FROM range(20)"
    ).cache()


PASSING = Suite(
    name="docs_orders_rules",
    description="ids present, status known",
    expectations=lambda: [*not_null(["order_id", "status"]), *in_set("status", ["paid", "shipped"])],
)
FAILING = Suite(
    name="docs_orders_amounts",
    description="amount at most 1.00",
    expectations=lambda: [*between("amount", 0, 1)],  # 1.10 .. 1.90 break it
    example_columns=("order_id",),
)


@pytest.fixture(scope="module")
def warehouse(spark, tmp_path_factory):
    warehouse = tmp_path_factory.mktemp("docs") / "warehouse"
    df = _frame(spark)
    root = validations_dir(str(warehouse))
    for day in ("2026-11-01", "2026-11-02"):
        for suite in (PASSING, FAILING):
            record_validation(validate(df, suite), root, day, asset_key="silver/orders", run_id=f"run-{day}")
    df.unpersist()
    return warehouse


def test_site_has_an_index_a_page_per_result_and_per_suite(warehouse):
    site = build_data_docs(str(warehouse))

    assert site.index == warehouse / "quality" / "data_docs" / "index.html"
    assert (site.suites, site.validations) == (2, 4)
    assert site.failed == ["docs_orders_amounts/2026-11-01", "docs_orders_amounts/2026-11-02"]
    index = site.index.read_text()
    assert "docs_orders_rules" in index and "docs_orders_amounts" in index
    pages = list((site.index.parent / "validations").rglob("*.html"))
    assert len(pages) == 4
    failing_page = next(p for p in pages if "docs_orders_amounts" in str(p) and "2026-11-02" in str(p))
    html = failing_page.read_text()
    assert "amount" in html and "Failed" in html
    assert len(list((site.index.parent / "expectations").rglob("*.html"))) == 2


def test_rebuild_for_one_partition_replaces_the_site(warehouse):
    site = build_data_docs(str(warehouse), partitions=["2026-11-02"])

    assert (site.suites, site.validations) == (2, 2)
    pages = list((site.index.parent / "validations").rglob("*.html"))
    assert len(pages) == 2 and all("2026-11-02" in str(p) for p in pages)


def test_no_results_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        build_data_docs(str(tmp_path / "warehouse"))


def test_onetrack_docs_prints_the_index(warehouse, monkeypatch, capsys):
    monkeypatch.setenv("ONETRACK_WAREHOUSE_DIR", str(warehouse))
    monkeypatch.setattr(cli.os, "chdir", lambda _path: None)

    assert cli.main(["docs"]) == 0

    out = capsys.readouterr().out
    assert f"{data_docs_dir(str(warehouse))}/index.html" in out
    assert cli.main(["docs", "--dt", "2026-11-09"]) == 1
