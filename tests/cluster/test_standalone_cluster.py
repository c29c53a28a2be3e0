"""The cluster path, proven (issue 6, item 6).

A Spark standalone master and one worker are started on loopback from the installed pyspark; the
same generated landing zone is run through ``onetrack run`` twice, as a subprocess each time, once
with ``ONETRACK_SPARK_MASTER=local[*]`` and once with ``ONETRACK_SPARK_MASTER=spark://127.0.0.1:<port>``.
Nothing else differs between the two runs. Every Delta table under the warehouse must have the same
rows (only columns that record the wall-clock time of a run are left out), the settlement CSVs must
be byte-identical and the manifests equal apart from their generation times; the DuckDB serving
file must hold the same rows.

Cost: four day-runs of the pipeline (~2-3 minutes each on an idle 2-core machine) plus the master
and worker start-up (~15 s). Markers ``slow`` and ``cluster``.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from pipelines.config import REPO_ROOT

pytestmark = [pytest.mark.slow, pytest.mark.cluster]

START, END = dt.date(2026, 11, 1), dt.date(2026, 11, 2)
# The smallest sample that still puts refunds into the ledger within two days (asserted below).
ORDERS_PER_DAY = 30
SEED = 11

# Columns that legitimately differ from run to run: the wall-clock time at which a run computed
# something, or an id generated when a table was created. Everything else must be identical.
PER_RUN_COLUMNS = {
    "finance/ledger_days": {"computed_at"},
    # when the version was committed, and the id Delta gave the table when it was created
    "audit/snapshot_versions": {"committed_at", "table_id"},
}
# Manifest fields that record the run rather than the content.
PER_RUN_MANIFEST_FIELDS = ("generated_at", "first_generated_at")
# Tables that must exist and hold rows, so that the comparison compares something.
MUST_HAVE_ROWS = (
    "bronze/landing_files",
    "silver/orders",
    "silver/returns",
    "silver/ad_spend",
    "silver/traffic",
    "quarantine/orders",
    "finance/order_attribution",
    "finance/ad_fee_allocation",
    "finance/ad_fee_refund_ledger",
    "gold/kpi_daily",
)

RUN_TIMEOUT_S = 3600  # per `onetrack run` of two days; a busy shared machine can be slow


# --- the standalone cluster ----------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _spark_home() -> Path:
    import pyspark

    return Path(pyspark.__file__).resolve().parent


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return f"(no log at {path})"


def _master_state(webui_port: int) -> dict | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{webui_port}/json/", timeout=5) as response:
            return json.loads(response.read())
    except (OSError, ValueError):
        return None


def _wait_for(what: str, predicate, procs: list[tuple[subprocess.Popen, Path]], timeout: float = 180.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for proc, log in procs:
            if proc.poll() is not None:
                raise RuntimeError(f"{what}: {proc.args[1]} exited ({proc.returncode}):\n{_tail(log)}")
        if predicate():
            return
        time.sleep(1.0)
    logs = "\n---\n".join(_tail(log) for _, log in procs)
    raise TimeoutError(f"{what}: not ready after {timeout:.0f}s\n{logs}")


def _stop(proc: subprocess.Popen) -> None:
    """Terminate the process group (the worker's executors included), then kill what is left."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            pass
    try:  # executors of the worker share its process group and may outlive it briefly
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pass


@pytest.fixture
def standalone_master(tmp_path_factory):
    """``spark://127.0.0.1:<port>`` of a standalone master with one registered worker (1 core, 2g)."""
    home = _spark_home()
    spark_class = home / "bin" / "spark-class"
    if not spark_class.is_file():
        pytest.fail(f"{spark_class} not found: is pyspark installed with its bin/ directory?")
    root = tmp_path_factory.mktemp("standalone")
    conf_dir = root / "conf"  # empty: no spark-defaults.conf / spark-env.sh from anywhere else
    work_dir = root / "work"  # the worker's application directories (executor logs)
    conf_dir.mkdir()
    work_dir.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPARK_")}
    env.update(
        {
            "SPARK_HOME": str(home),
            "SPARK_CONF_DIR": str(conf_dir),
            "SPARK_LOCAL_IP": "127.0.0.1",
            "SPARK_LOG_DIR": str(root),
            "SPARK_NO_DAEMONIZE": "1",
        }
    )
    port, master_ui, worker_ui = _free_port(), _free_port(), _free_port()
    url = f"spark://127.0.0.1:{port}"
    procs: list[tuple[subprocess.Popen, Path]] = []

    def start(name: str, *args: str) -> None:
        log = root / f"{name}.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                [str(spark_class), *args],
                env=env,
                cwd=root,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # own process group: stopped as a whole
            )
        procs.append((proc, log))

    try:
        start(
            "master",
            "org.apache.spark.deploy.master.Master",
            "--host", "127.0.0.1", "--port", str(port), "--webui-port", str(master_ui),
        )
        _wait_for(
            "standalone master",
            lambda: (_master_state(master_ui) or {}).get("status") == "ALIVE",
            procs,
        )
        start(
            "worker",
            "org.apache.spark.deploy.worker.Worker", url,
            "--host", "127.0.0.1", "--cores", "1", "--memory", "2g",
            "--webui-port", str(worker_ui), "--work-dir", str(work_dir),
        )
        _wait_for(
            "standalone worker registration",
            lambda: (_master_state(master_ui) or {}).get("aliveworkers", 0) >= 1,
            procs,
        )
        yield {"url": url, "webui_port": master_ui, "root": root}
    finally:
        for proc, _ in reversed(procs):
            _stop(proc)


# --- the two runs -------------------------------------------------------------------------------


def _onetrack() -> list[str]:
    script = Path(sys.executable).parent / "onetrack"
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-c", "from pipelines.cli import main; main()"]


def run_onetrack(root: Path, landing: Path, master: str) -> dict:
    """``onetrack run --from START --to END`` in a subprocess; only ``ONETRACK_SPARK_MASTER`` and
    the output roots are set (the rest of the environment is the caller's, the same for every run)."""
    env = {k: v for k, v in os.environ.items() if k not in ("ONETRACK_SPARK_REMOTE", "ONETRACK_SPARK_MASTER")}
    env.update(
        {
            "ONETRACK_SPARK_MASTER": master,
            "ONETRACK_LANDING_DIR": str(landing),
            "ONETRACK_WAREHOUSE_DIR": str(root / "warehouse"),
            "ONETRACK_SETTLEMENT_DIR": str(root / "settlements"),
            "DAGSTER_HOME": str(root / "dagster_home"),
            "SPARK_LOCAL_IP": "127.0.0.1",
            # Every fault is injected into a tiny sample: one CSV missing a column is 30 of ~185
            # ad-spend rows, above the default quarantine allowance (25) that blocks a day. This
            # test is about running on a cluster, so both runs allow more (the same setting).
            "ONETRACK_QUARANTINE_ALLOWANCE": "100",
        }
    )
    log = root / "onetrack-run.log"
    started = time.monotonic()
    with open(log, "wb") as out:
        result = subprocess.run(
            [*_onetrack(), "run", "--from", START.isoformat(), "--to", END.isoformat()],
            env=env,
            cwd=REPO_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=RUN_TIMEOUT_S,
        )
    elapsed = time.monotonic() - started
    assert result.returncode == 0, (
        f"onetrack run against {master} failed ({result.returncode}):\n{_tail(log, 60)}"
    )
    return {"root": root, "master": master, "seconds": elapsed, "log": log}


# --- comparison ---------------------------------------------------------------------------------


def delta_tables(warehouse: Path) -> list[str]:
    """``<layer>/<table>`` of every Delta table under ``warehouse``."""
    return sorted(str(p.parent.relative_to(warehouse)) for p in warehouse.rglob("_delta_log") if p.is_dir())


def compare_tables(spark, left: Path, right: Path) -> tuple[dict[str, int], list[str]]:
    """Row counts of ``left``'s tables and the differences between the two warehouses.

    Rows are compared as multisets of canonical JSON (columns in name order), so row order and file
    layout do not matter, duplicated rows do.
    """
    from pyspark.sql import functions as F

    problems: list[str] = []
    counts: dict[str, int] = {}
    left_tables, right_tables = delta_tables(left), delta_tables(right)
    if left_tables != right_tables:
        problems.append(
            f"table sets differ: only left {sorted(set(left_tables) - set(right_tables))}, "
            f"only right {sorted(set(right_tables) - set(left_tables))}"
        )
    for table in sorted(set(left_tables) & set(right_tables)):
        skip = PER_RUN_COLUMNS.get(table, set())
        a = spark.read.format("delta").load(str(left / table))
        b = spark.read.format("delta").load(str(right / table))
        schema_a = [(f.name, f.dataType.simpleString()) for f in a.schema.fields]
        schema_b = [(f.name, f.dataType.simpleString()) for f in b.schema.fields]
        if schema_a != schema_b:
            problems.append(f"{table}: schemas differ: {schema_a} vs {schema_b}")
            continue
        columns = sorted(name for name, _ in schema_a if name not in skip)
        row = F.to_json(F.struct(*[F.col(f"`{c}`") for c in columns])).alias("row")
        diff = (
            a.select(row, F.lit(1).alias("n"))
            .unionByName(b.select(row, F.lit(-1).alias("n")))
            .groupBy("row")
            .agg(F.sum("n").alias("n"))
        )
        summary = diff.agg(
            F.sum(F.when(F.col("n") > 0, F.col("n")).otherwise(0)).alias("only_left"),
            F.sum(F.when(F.col("n") < 0, -F.col("n")).otherwise(0)).alias("only_right"),
        ).first()
        counts[table] = a.count()
        if summary["only_left"] or summary["only_right"]:
            examples = [f"{r['n']:+d} {r['row'][:300]}" for r in diff.filter("n != 0").limit(6).collect()]
            problems.append(
                f"{table}: {summary['only_left']} rows only in {left.parent.name}, "
                f"{summary['only_right']} only in {right.parent.name}; e.g.\n    " + "\n    ".join(examples)
            )
    return counts, problems


def _files(root: Path) -> dict[str, Path]:
    return {
        str(p.relative_to(root)): p
        for p in sorted(root.rglob("*"))
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts)
    }


def _manifest_content(path: Path) -> dict:
    manifest = json.loads(path.read_bytes())
    for key in PER_RUN_MANIFEST_FIELDS:
        manifest.get("run", {}).pop(key, None)
    return manifest


def compare_settlements(left: Path, right: Path) -> tuple[list[str], list[str]]:
    """Published days of ``left`` and the differences: CSVs byte for byte, manifests minus run times."""
    problems: list[str] = []
    a, b = _files(left), _files(right)
    if sorted(a) != sorted(b):
        only_a, only_b = sorted(set(a) - set(b)), sorted(set(b) - set(a))
        problems.append(f"settlement files differ: only left {only_a}, only right {only_b}")
    for name in sorted(set(a) & set(b)):
        if name.endswith("manifest.json"):
            if _manifest_content(a[name]) != _manifest_content(b[name]):
                problems.append(f"{name}: {_manifest_content(a[name])} != {_manifest_content(b[name])}")
        elif a[name].read_bytes() != b[name].read_bytes():
            problems.append(f"{name}: bytes differ")
    days = sorted({Path(n).parts[0] for n in a})
    return days, problems


def compare_serving(left: Path, right: Path) -> list[str]:
    """The DuckDB serving files (``<warehouse>/serving/kpi.duckdb``) hold the same rows."""
    import duckdb

    problems: list[str] = []
    files = [w / "serving" / "kpi.duckdb" for w in (left, right)]
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        return [f"serving file missing: {missing}"]
    contents = []
    for path in files:
        with duckdb.connect(str(path), read_only=True) as con:
            tables = [r[0] for r in con.execute(
                "SELECT table_name FROM information_schema.tables ORDER BY table_name").fetchall()]
            contents.append({t: con.execute(f'SELECT * FROM "{t}" ORDER BY ALL').fetchall() for t in tables})
    if sorted(contents[0]) != sorted(contents[1]):
        problems.append(f"serving tables differ: {sorted(contents[0])} vs {sorted(contents[1])}")
    for table in sorted(set(contents[0]) & set(contents[1])):
        if contents[0][table] != contents[1][table]:
            problems.append(f"serving {table}: rows differ")
    return problems


# --- the test -----------------------------------------------------------------------------------


@pytest.fixture
def landing(tmp_path_factory) -> Path:
    from pipelines.generate import generate_landing

    path = tmp_path_factory.mktemp("cluster") / "landing"
    generate_landing(path, START, END, orders_per_day=ORDERS_PER_DAY, seed=SEED, faults=True)
    return path


@pytest.fixture
def local_run(landing, tmp_path_factory) -> dict:
    """The reference: the same days with ``local[*]`` (run before the cluster is started)."""
    return run_onetrack(tmp_path_factory.mktemp("local"), landing, "local[*]")


def test_standalone_cluster_matches_local(local_run, standalone_master, landing, tmp_path_factory, request):
    cluster = run_onetrack(tmp_path_factory.mktemp("standalone_run"), landing, standalone_master["url"])

    # The run really went through the cluster: the master recorded the application and the worker
    # ran executors for it.
    state = _master_state(standalone_master["webui_port"]) or {}
    apps = state.get("activeapps", []) + state.get("completedapps", [])
    assert apps, f"no application ever registered with {standalone_master['url']}: {state}"
    executor_dirs = list((standalone_master["root"] / "work").glob("app-*/*"))
    assert executor_dirs, "the worker never launched an executor"

    spark = request.getfixturevalue("spark")
    counts, problems = compare_tables(spark, local_run["root"] / "warehouse", cluster["root"] / "warehouse")
    days, more = compare_settlements(local_run["root"] / "settlements", cluster["root"] / "settlements")
    problems += more
    problems += compare_serving(local_run["root"] / "warehouse", cluster["root"] / "warehouse")

    print(
        f"\nlocal[*] {local_run['seconds']:.0f}s, {standalone_master['url']} {cluster['seconds']:.0f}s; "
        f"{len(counts)} Delta tables compared; settlement days {days}"
    )
    for table, n in sorted(counts.items()):
        print(f"  {table}: {n} rows")
    assert not problems, "standalone cluster run differs from local[*]:\n" + "\n".join(problems)

    empty = [t for t in MUST_HAVE_ROWS if counts.get(t, 0) == 0]
    assert not empty, f"tables without rows (the comparison would prove little): {empty}"
    assert days == [f"dt={START + dt.timedelta(days=i)}" for i in range((END - START).days + 1)], days
