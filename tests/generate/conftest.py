"""Generated landing zones shared by the generator tests (built once per session, no Spark)."""

from __future__ import annotations

import datetime as dt

import pytest

from pipelines.generate import generate_landing

from .frames import load_accepted

START = dt.date(2026, 11, 1)


@pytest.fixture(scope="session")
def faulty_landing(tmp_path_factory):
    """One week with every fault kind (small volume so the plain-Python oracle stays fast)."""
    path = tmp_path_factory.mktemp("faulty") / "landing"
    summary = generate_landing(
        path, START, START + dt.timedelta(days=6), orders_per_day=300, seed=7, faults=True
    )
    return path, summary


@pytest.fixture(scope="session")
def clean_landing(tmp_path_factory):
    """Five weeks without faults: long enough for returns, late refunds and reversals to land."""
    path = tmp_path_factory.mktemp("clean") / "landing"
    summary = generate_landing(path, START, START + dt.timedelta(days=34), orders_per_day=300, seed=11)
    return path, summary


@pytest.fixture(scope="session")
def clean_frames(clean_landing):
    return load_accepted(clean_landing[0])
