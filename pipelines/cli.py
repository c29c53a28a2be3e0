"""The ``onetrack`` command: generate sample data, run days through Dagster, serve finance.

    onetrack generate --from 2026-11-01 --to 2026-11-07 [--orders-per-day N] [--seed S] [--faults]
    onetrack run --from 2026-11-01 --to 2026-11-07      # every asset and check, day by day
    onetrack demo                                       # generate + run + where to look
    onetrack settlements list | show D | verify D       # finance
    onetrack docs [--dt D]                              # GE Data Docs of the recorded validations
    onetrack maintain [--retain-hours H]                # OPTIMIZE + VACUUM every Delta table
    onetrack bench --scale S|M|L [--days N] [--plot]    # generate + run + per-step figures
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import time
from pathlib import Path

from pipelines.config import OnetrackConfig

DEMO_FROM = "2026-11-01"
DEMO_TO = "2026-11-04"


def _date(text: str) -> dt.date:
    return dt.date.fromisoformat(text)


def _days(start: dt.date, end: dt.date) -> list[dt.date]:
    if end < start:
        raise SystemExit(f"--to {end} is before --from {start}")
    return [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]


def ensure_dagster_home() -> str:
    """CLI runs go to the same Dagster instance the UI reads (``DAGSTER_HOME``)."""
    home = os.environ.get("DAGSTER_HOME") or str(Path.cwd() / "data" / "dagster_home")
    Path(home).mkdir(parents=True, exist_ok=True)
    os.environ["DAGSTER_HOME"] = home
    from pipelines.instance import write_instance_settings  # run queue and pool limits

    write_instance_settings(Path(home) / "dagster.yaml")
    return home


def cmd_generate(args) -> int:
    from pipelines.generate import generate_landing

    cfg = OnetrackConfig.from_env()
    landing = args.landing or cfg.landing_dir
    started = time.monotonic()
    summary = generate_landing(
        landing, _date(args.start), _date(args.end),
        orders_per_day=args.orders_per_day, seed=args.seed, faults=args.faults,
    )
    print(f"generated landing zone in {landing} ({time.monotonic() - started:.1f}s)")
    print(summary.describe() if hasattr(summary, "describe") else summary)
    return 0


def daily_job_and_instance():
    """The ``onetrack_daily`` job of the Dagster definitions and the instance of ``DAGSTER_HOME``."""
    ensure_dagster_home()
    from dagster import DagsterInstance

    from pipelines.definitions import defs
    from pipelines.jobs import daily_job

    return defs.resolve_job_def(daily_job.name), DagsterInstance.get()


def run_day(job, instance, day: dt.date, *, log=print):
    """Materialize every asset and check of one day in-process; ``(ok, ExecuteInProcessResult)``.

    ``ok`` is False on a failed step or a failed critical check.
    """
    from dagster import AssetCheckSeverity

    started = time.monotonic()
    log(f"[{day}] running {job.name} ...")
    result = job.execute_in_process(
        partition_key=day.isoformat(),
        instance=instance,
        raise_on_error=False,
        tags={"onetrack/launched_by": "cli"},
    )
    failed_steps = [e.step_key for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    evaluations = [
        e.event_specific_data
        for e in result.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION"
    ]
    failed_checks = [
        f"{ev.asset_key.to_user_string()}:{ev.check_name}"
        for ev in evaluations
        if not ev.passed and ev.severity == AssetCheckSeverity.ERROR
    ]
    warned = [
        f"{ev.asset_key.to_user_string()}:{ev.check_name}"
        for ev in evaluations
        if not ev.passed and ev.severity != AssetCheckSeverity.ERROR
    ]
    materialized = sum(1 for e in result.all_events if e.event_type_value == "ASSET_MATERIALIZATION")
    elapsed = time.monotonic() - started
    ok = result.success and not failed_checks
    log(
        f"[{day}] {'ok' if ok else 'FAILED'}: "
        f"{materialized} assets, {len(evaluations)} checks ({len(warned)} warnings) in {elapsed:.1f}s"
    )
    for name in warned:
        log(f"  warning: check {name} did not pass")
    for name in failed_checks:
        log(f"  FAILED critical check {name}")
    for step in failed_steps:
        log(f"  FAILED step {step}")
    return ok, result


def run_days(days: list[dt.date], *, log=print) -> bool:
    """Materialize every asset and check for each day, in-process, through the Dagster definitions.

    Stops at the first day with a failed step or a failed critical check (later days build on it).
    """
    job, instance = daily_job_and_instance()
    for day in days:
        ok, result = run_day(job, instance, day, log=log)
        if not ok:
            log(f"[{day}] stopping: later days build on this one. Run id {result.run_id}")
            return False
    return True


def cmd_run(args) -> int:
    days = _days(_date(args.start), _date(args.end))
    return 0 if run_days(days) else 1


def where_to_look(cfg: OnetrackConfig) -> str:
    return "\n".join(
        [
            "Where to look:",
            f"  landing zone       {cfg.landing_dir}",
            f"  Delta tables       {cfg.warehouse_dir}/<layer>/<table>",
            f"  settlement files   {cfg.settlement_dir}/dt=YYYY-MM-DD/",
            f"  KPIs (DuckDB)      .venv/bin/duckdb -readonly {cfg.warehouse_dir}/serving/kpi.duckdb",
            f"  Dagster UI         DAGSTER_HOME={os.environ.get('DAGSTER_HOME', 'data/dagster_home')} "
            ".venv/bin/dagster dev -w workspace.yaml",
        ]
    )


def cmd_demo(args) -> int:
    cfg = OnetrackConfig.from_env()
    args.landing = None
    if args.fresh:
        import shutil

        for root in (cfg.landing_dir, cfg.warehouse_dir, cfg.settlement_dir):
            if "://" not in root:
                shutil.rmtree(root, ignore_errors=True)
    cmd_generate(args)
    ok = run_days(_days(_date(args.start), _date(args.end)))
    print(where_to_look(cfg))
    return 0 if ok else 1


def cmd_settlements(args) -> int:
    from assets.finance import settlement_files as sf

    cfg = OnetrackConfig.from_env()
    root = args.settlement_dir or cfg.settlement_dir
    if args.action == "list":
        days = sf.list_published(root)
        if not days:
            print(f"no settlement files published under {root}")
        for day in days:
            print("  ".join(f"{k}={v}" for k, v in day.items()))
        return 0
    if not args.day:
        raise SystemExit(f"onetrack settlements {args.action} needs a date")
    if args.action == "show":
        print(sf.format_show(sf.show_day(root, _date(args.day))))
        return 0
    problems = sf.verify_day(root, _date(args.day))
    if problems:
        for problem in problems:
            print(f"MISMATCH {problem}")
        return 1
    print(f"dt={args.day}: files match manifest")
    return 0


def cmd_docs(args) -> int:
    from quality.data_docs import build_data_docs

    cfg = OnetrackConfig.from_env()
    try:
        site = build_data_docs(cfg.warehouse_dir, partitions=args.dt or None)
    except FileNotFoundError as error:
        print(error, file=sys.stderr)
        return 1
    print(f"Data Docs: {site.suites} suites, {site.validations} results ({len(site.failed)} failed)")
    print(site.index)
    return 0


def _history_days(text: str) -> tuple[int, int]:
    from pipelines.bench import history_range

    try:
        return history_range(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def cmd_bench(args) -> int:
    from pipelines.bench import SCALES, run_bench

    return run_bench(
        scale=args.scale,
        orders_per_day=args.orders_per_day or SCALES[args.scale],
        start=_date(args.start),
        days=args.days,
        out=args.out or Path("data") / "bench" / args.scale,
        seed=args.seed,
        warmup_days=args.warmup_days,
        skip_generate=args.skip_generate,
        keep_warehouse=args.keep_warehouse,
        plot=args.plot,
        history_days=args.history_days,
        maintenance=args.maintenance,
    )


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not >= 1")
    return value


def cmd_maintain(args) -> int:
    from assets.maintenance import maintain_warehouse
    from pipelines.spark import build_spark_session

    cfg = OnetrackConfig.from_env()
    spark = build_spark_session()
    retain = cfg.vacuum_retain_hours if args.retain_hours is None else args.retain_hours
    results = maintain_warehouse(
        spark, cfg.warehouse_dir, retain_hours=retain, log=print, parallelism=cfg.maintenance_parallelism
    )
    before, after = sum(r["files_before"] for r in results), sum(r["files_after"] for r in results)
    print(f"{len(results)} tables: {before} -> {after} data files")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="onetrack", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    def add_range(p, default_from=None, default_to=None):
        p.add_argument("--from", dest="start", default=default_from, required=default_from is None)
        p.add_argument("--to", dest="end", default=default_to, required=default_to is None)

    gen = sub.add_parser("generate", help="write a deterministic sample landing zone")
    add_range(gen)
    gen.add_argument("--orders-per-day", type=int, default=1000)
    gen.add_argument("--seed", type=int, default=7)
    gen.add_argument("--faults", action="store_true", help="inject every fault of SPEC §2-3")
    gen.add_argument("--landing", help="landing root (default: ONETRACK_LANDING_DIR or data/landing)")
    gen.set_defaults(func=cmd_generate)

    run = sub.add_parser("run", help="materialize every asset and check for each day of a range")
    add_range(run)
    run.set_defaults(func=cmd_run)

    demo = sub.add_parser("demo", help="generate the sample and run every day of it")
    add_range(demo, DEMO_FROM, DEMO_TO)
    demo.add_argument("--orders-per-day", type=int, default=1000)
    demo.add_argument("--seed", type=int, default=7)
    demo.add_argument("--no-faults", dest="faults", action="store_false")
    demo.add_argument("--fresh", action="store_true", help="remove earlier landing/warehouse/settlements first")
    demo.set_defaults(func=cmd_demo, faults=True)

    st = sub.add_parser("settlements", help="finance: list, show and verify settlement files")
    st.add_argument("action", choices=["list", "show", "verify"])
    st.add_argument("day", nargs="?")
    st.add_argument("--settlement-dir")
    st.set_defaults(func=cmd_settlements)

    maintain = sub.add_parser("maintain", help="compact (OPTIMIZE) and VACUUM every Delta table")
    maintain.add_argument(
        "--retain-hours", type=int, help="VACUUM retention (default: ONETRACK_VACUUM_RETAIN_HOURS or 168)"
    )
    maintain.set_defaults(func=cmd_maintain)

    docs = sub.add_parser("docs", help="build Great Expectations Data Docs from the recorded validations")
    docs.add_argument("--dt", action="append", help="only this landing date (repeatable; default: all)")
    docs.set_defaults(func=cmd_docs)

    bench = sub.add_parser(
        "bench", help="benchmark: generate a scale, run it day by day, per-step time, rows, GE time, memory"
    )
    bench.add_argument(
        "--scale", choices=["S", "M", "L"], default="S", help="S 1,000; M 100,000; L 1,000,000 orders a day"
    )
    bench.add_argument("--orders-per-day", type=_positive, help="override the scale's orders a day")
    bench.add_argument("--days", type=_positive, default=1)
    bench.add_argument("--from", dest="start", default=DEMO_FROM)
    bench.add_argument("--seed", type=int, default=7)
    bench.add_argument(
        "--warmup-days",
        type=int,
        default=0,
        help="the simulated platform runs this many days before --from (steady input from day 1)",
    )
    bench.add_argument("--skip-generate", action="store_true", help="reuse the landing zone under --out")
    bench.add_argument(
        "--keep-warehouse",
        action="store_true",
        help="run on top of the earlier warehouse and settlements (default: start empty)",
    )
    bench.add_argument("--out", help="benchmark root (default data/bench/<scale>)")
    bench.add_argument("--plot", action="store_true", help="also write SVG charts")
    bench.add_argument(
        "--history-days",
        type=_history_days,
        metavar="FIRST-LAST",
        help="run these days of the run (1-based, e.g. 6-27) without their asset checks: a long "
        "history builds sooner; keep day 5 and the last day checked for the day-30/day-5 ratio",
    )
    bench.add_argument(
        "--maintenance",
        choices=["none", "weekly"],
        default="none",
        help="weekly: run the maintenance job (OPTIMIZE + VACUUM) after each Saturday, as the "
        "schedule does in production; timed apart from the days",
    )
    bench.set_defaults(func=cmd_bench)
    return parser


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    os.chdir(os.environ.get("ONETRACK_HOME", os.getcwd()))
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())

