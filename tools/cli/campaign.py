"""``hullwatch campaign``: Monte Carlo campaigns of the closed loop, locally or on Dask."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ...sim.scenario import load_scenario
from ..campaign.executor import (RESULTS_FILE, DaskPool, LocalPool, Progress, read_records, run_campaign,
                                 sample_case_ids)
from ..campaign.report import write_report
from ..campaign.spec import builtin_spec_names, case_id, load_spec
from ..errors import EXIT_OK, EXIT_VERDICT, InputError
from ..units import hours_minutes
from . import SUMMARIES
from .common import progress_bar

EXAMPLES = """\
examples:
  hullwatch campaign smoke -o runs/smoke                      # built-in spec, all local cores
  hullwatch campaign fdir-acceptance -o runs/acc --workers 2  # local process pool
  hullwatch campaign my.toml -o runs/my --dask-local 4        # Dask LocalCluster of 4 workers
  hullwatch campaign my.toml -o runs/my --scheduler tcp://10.0.0.5:8786
  hullwatch campaign fdir-robustness -o runs/rob --dask-local 2 --sample 40   # a fixed 40-case sample
  hullwatch campaign fdir-robustness -o runs/rob --groups leak-iss,nominal-iss
  hullwatch campaign report runs/acc                          # re-render the report
  hullwatch campaign --list                                   # built-in specs

An interrupted campaign re-run with the same arguments runs only the cases not yet recorded
in DIR/cases.jsonl. Each case's scenario is saved as DIR/cases/<id>.toml; replay one with its
seed from cases.csv, e.g.
  hullwatch run --scenario runs/acc/cases/leak-00042.toml --seed 1234567
Spec format: docs/detection.md.
"""


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "campaign",
        help=SUMMARIES["campaign"],
        description="Draw the cases of a campaign spec, run each through the closed loop (flight "
        "software against the simulated station), record the outcome per case and write the "
        "report (cases.csv, summary.md/json, detection.png, latency.png) in DIR.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("spec", nargs="?", metavar="SPEC",
                   help="spec TOML file or built-in spec name; or the word 'report'")
    p.add_argument("dir", nargs="?", metavar="DIR", help="with 'report': the campaign directory")
    p.add_argument("-o", "--output", metavar="DIR", help="campaign directory (created; resumed if it exists)")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--workers", "-j", type=int, metavar="N",
                       help="local process pool of N workers (default: one per core)")
    where.add_argument("--dask-local", type=int, metavar="N",
                       help="start a Dask LocalCluster of N single-threaded workers")
    where.add_argument("--scheduler", metavar="tcp://HOST:PORT",
                       help="use an existing Dask scheduler (its workers need hullwatch installed)")
    p.add_argument("--max-cases", type=int, metavar="N", help="stop after N new cases (re-run to go on)")
    p.add_argument("--sample", type=int, metavar="N",
                   help="run a fixed random sample of about N cases, shared over the groups in "
                   "proportion to their sizes (the same sample every time)")
    p.add_argument("--groups", metavar="NAME[,NAME...]", help="run only these groups of the spec")
    p.add_argument("--retry-failed", action="store_true", help="run again the cases recorded as failed")
    p.add_argument("--check", action="store_true",
                   help="exit with status 1 unless every acceptance target is met")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--list", action="store_true", help="list the built-in specs and exit")
    p.set_defaults(func=handler)


def handler(args: argparse.Namespace) -> int:
    if args.list:
        for name in builtin_spec_names():
            spec = load_spec(name)
            print(f"{name:18s} {spec.size:6d} cases  {spec.description}")
        return EXIT_OK
    if args.spec == "report":
        if not args.dir:
            raise InputError("campaign report: expected the campaign directory, e.g. 'hullwatch campaign report runs/acc'")
        return _report(Path(args.dir), args.check)
    if not args.spec:
        raise InputError("campaign: expected a spec file or built-in spec name (see --list)")
    if args.dir:
        raise InputError(f"campaign: unexpected argument {args.dir!r}; give the output directory with -o DIR")
    if not args.output:
        raise InputError("campaign: missing -o DIR (where the results and the report go)")
    for opt in ("workers", "dask_local", "max_cases", "sample"):
        v = getattr(args, opt)
        if v is not None and v < (0 if opt == "max_cases" else 1):
            raise InputError(f"--{opt.replace('_', '-')}: expected a positive number, got {v}")
    spec = load_spec(args.spec)
    return _run(spec, Path(args.output), args)


def _executor(args: argparse.Namespace) -> Any:
    if args.scheduler:
        return DaskPool(scheduler=args.scheduler)
    if args.dask_local:
        return DaskPool(workers=args.dask_local)
    return LocalPool(args.workers)


def _run(spec: Any, out: Path, args: argparse.Namespace) -> int:
    bar = None

    def on_progress(p: Progress) -> None:
        nonlocal bar
        if args.no_progress:
            return
        if bar is None:
            bar = progress_bar(total=p.total, initial=p.done, unit="case", dynamic_ncols=True, desc=spec.name)
        else:
            bar.update(1)
        bar.set_postfix_str(f"failed {p.failed}", refresh=False)

    case_ids = None
    if args.sample is not None or args.groups:
        groups = [g.strip() for g in args.groups.split(",") if g.strip()] if args.groups else None
        case_ids = sample_case_ids(spec, args.sample, groups)
    with _executor(args) as executor:
        count = f"{len(case_ids)} of {spec.size}" if case_ids is not None else f"{spec.size}"
        print(f"campaign {spec.name}: {count} cases on {executor.description} -> {out}", file=sys.stderr)
        estimate = _estimate(spec, out, executor.workers, case_ids)
        if estimate:
            print(f"campaign {spec.name}: {estimate}", file=sys.stderr)
        try:
            run = run_campaign(spec, out, executor, on_progress=on_progress, max_cases=args.max_cases,
                               retry_failed=args.retry_failed, case_ids=case_ids)
        finally:
            if bar is not None:
                bar.close()
    print(f"{run.ran} cases run in {run.wall_s:.1f} s; {run.done}/{run.total} recorded, {run.failed} failed"
          + ("" if run.complete else " (incomplete: re-run the same command to go on)"))
    return _report(out, args.check)


#: closed-loop speed of one campaign worker, simulated seconds per wall second: the range seen on
#: the project's 2-core machine (case set-up included; lower when the machine is shared)
WORKER_SPEEDUP = (1000.0, 3000.0)


def _estimate(spec: Any, out: Path, workers: int, case_ids: Any = None) -> str | None:
    """``mission time ...; expect about 18-54 min`` for the cases not yet recorded, or None when
    that cannot be known (a scenario that does not load is reported by the run itself)."""
    done = set(read_records(out)) if out.is_dir() else set()
    wanted = set(case_ids) if case_ids is not None else None  # --sample/--groups: only those
    mission = 0.0
    for g in spec.groups:
        ids = [case_id(g.name, i) for i in range(g.size)]
        todo = sum(c not in done and (wanted is None or c in wanted) for c in ids)
        if not todo:
            continue
        try:
            duration = g.duration_s or load_scenario(g.scenario).duration_s
        except Exception:  # noqa: BLE001 - an estimate is never worth failing for
            return None
        mission += todo * float(duration)
    if not mission:
        return None
    slow, fast = (mission / (rate * max(1, workers)) for rate in WORKER_SPEEDUP)
    return (f"{mission / 3600:.0f} h of mission time to simulate; expect about "
            f"{hours_minutes(fast)} to {hours_minutes(slow)} (Ctrl-C keeps what is done; "
            "the same command goes on)")


def _report(directory: Path, check: bool) -> int:
    files = write_report(directory)
    s = files.summary
    print(f"report: {files.summary_md}, {files.csv}" + "".join(f", {p}" for p in files.plots))
    for t in s["targets"]:
        value = t["value"]
        shown = t.get("shown") or ("-" if value is None else str(value))
        print(f"  [{t.get('status', 'met' if t['met'] else 'MISSED')}] {t['target']}: {shown}")
    if check and not all(t["met"] for t in s["targets"] if t.get("applicable", True)):
        return EXIT_VERDICT
    return EXIT_OK


def on_interrupt(args: argparse.Namespace) -> str:
    """What Ctrl-C leaves: every case recorded so far; the same command resumes."""
    if not args.output or args.spec == "report":
        return "nothing written"
    done = len(read_records(args.output)) if Path(args.output).is_dir() else 0
    return (f"{done} cases recorded in {Path(args.output) / RESULTS_FILE} (each line whole); "
            "run the same command again to go on from there")
