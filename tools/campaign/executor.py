"""Run a campaign's cases on a local process pool or on Dask, through one code path.

:func:`run_campaign` draws the spec's cases, skips those already recorded in ``DIR/cases.jsonl``,
writes each case's scenario to ``DIR/cases/<id>.toml`` (replayable with
``hullwatch run --scenario DIR/cases/<id>.toml --seed S``), submits ``execute_case(case_fn,
case)`` to a :class:`CaseExecutor`, and appends one JSON line per finished case as results come
back, flushed at once. An interrupted campaign re-run with the same spec and directory therefore
runs only the missing cases; since every case is a deterministic function of its parameters, the
finished set is the same whatever the number of workers and the order (wall times excepted).

Executors (:class:`LocalPool`, :class:`DaskPool`) only submit a function and wait for futures;
everything else (resume, recording, retries after a lost worker, progress) is written once here.

A case that raises, or exceeds its ``timeout_s`` of wall time, is recorded with ``status`` =
``"error"`` / ``"timeout"``, its error text and its seed; the campaign goes on. A worker that dies
(a crashed process, a Dask ``KilledWorker``) costs the cases it held a resubmission, up to
:data:`MAX_ATTEMPTS` in all, after which they are recorded as failed.

Raises :class:`CampaignError` (an :class:`~hullwatch.tools.errors.InputError`) when the output
directory holds a campaign of another spec.
"""

from __future__ import annotations

import abc
import concurrent.futures as cf
import ctypes
import json
import logging
import os
import subprocess
import threading
import time
import traceback
import zlib
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

from . import case as campaign_case
from .spec import Spec, case_id, iter_cases
from ..errors import InputError

CaseFn = Callable[[dict[str, Any]], dict[str, Any]]

#: Tries per case when the worker running it is lost (not when the case itself fails).
MAX_ATTEMPTS = 3

RESULTS_FILE = "cases.jsonl"
MANIFEST_FILE = "campaign.json"
CASES_DIR = "cases"


class CampaignError(InputError):
    """The campaign cannot run as asked (e.g. the output directory belongs to another spec)."""


class WorkerLost(Exception):
    """The worker running a case went away; the case itself may be fine."""


class CaseTimeout(Exception):
    """Raised inside a case that ran past its wall-time budget."""


# --------------------------------------------------------------------------------------------
# worker side


def execute_case(case_fn: CaseFn, case: dict[str, Any]) -> dict[str, Any]:
    """Run one case in a worker and return its record; never raises for a failing case.

    The record holds ``id``, ``seed``, ``status`` (``ok``, ``error``, ``timeout``), ``error``
    (one line, or ``""``), ``traceback`` (for errors), ``wall_s``, ``cpu_s`` and whatever
    ``case_fn`` returned (its measurements)."""
    t0 = time.perf_counter()
    c0 = time.process_time()
    record: dict[str, Any] = {"id": case["id"], "seed": case["seed"], "status": "ok", "error": ""}
    try:
        result = _call_with_timeout(case_fn, case, float(case.get("timeout_s") or 0.0))
        if not isinstance(result, dict):
            raise TypeError(f"case function returned {type(result).__name__}, expected a dict")
        record.update({k: v for k, v in result.items() if k not in record})
    except CaseTimeout:
        record.update(status="timeout", error=f"timed out after {case['timeout_s']:g} s of wall time")
    except Exception as exc:  # a failed case is data, not a reason to stop the campaign
        record.update(status="error", error=f"{type(exc).__name__}: {exc}".splitlines()[0][:500],
                      traceback="".join(traceback.format_exception(exc))[-4000:])
    record["wall_s"] = time.perf_counter() - t0
    record["cpu_s"] = time.process_time() - c0  # the worker process's CPU time (all its threads)
    return record


def _call_with_timeout(fn: CaseFn, arg: dict[str, Any], timeout_s: float) -> Any:
    """Call ``fn(arg)``; after ``timeout_s`` raise :class:`CaseTimeout` inside it.

    Why an asynchronous exception: a case runs in a worker thread (Dask) or a pool process whose
    task we cannot kill without losing the worker, and signals only reach the main thread. The
    closed loop is pure Python, so the exception lands within one bytecode; the lock makes sure
    it is never raised after ``fn`` has returned."""
    if timeout_s <= 0:
        return fn(arg)
    target = threading.get_ident()
    lock = threading.Lock()
    state = {"done": False, "fired": False}

    def fire() -> None:
        with lock:
            if not state["done"]:
                state["fired"] = True
                ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(target), ctypes.py_object(CaseTimeout))

    timer = threading.Timer(timeout_s, fire)
    timer.daemon = True
    timer.start()
    try:
        try:
            return fn(arg)
        finally:
            with lock:
                state["done"] = True
            timer.cancel()
    except CaseTimeout:
        raise
    except BaseException:
        if state["fired"]:
            raise CaseTimeout() from None
        raise


# --------------------------------------------------------------------------------------------
# executors


class CaseExecutor(abc.ABC):
    """Where cases run. ``submit`` returns a future (``done()``, ``result()``, ``cancel()``);
    ``wait_any`` blocks until at least one of ``futures`` is done and returns the done ones.
    ``result`` returns a future's value or raises :class:`WorkerLost` when the worker died."""

    workers: int
    description: str

    @abc.abstractmethod
    def submit(self, fn: Callable[..., Any], *args: Any, key: str) -> Any: ...

    @abc.abstractmethod
    def wait_any(self, futures: Iterable[Any]) -> list[Any]: ...

    @abc.abstractmethod
    def result(self, future: Any) -> Any: ...

    def close(self) -> None:
        """Release workers once their running cases are done (idempotent)."""

    def abort(self) -> None:
        """Release workers now, abandoning running cases (after Ctrl-C or an error)."""
        self.close()

    def __enter__(self) -> "CaseExecutor":
        return self

    def __exit__(self, exc_type: Any, *exc: Any) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


class LocalPool(CaseExecutor):
    """A local process pool of ``workers`` processes (``concurrent.futures``)."""

    def __init__(self, workers: int | None = None) -> None:
        self.workers = max(1, int(workers or os.cpu_count() or 1))
        self.description = f"local process pool, {self.workers} worker{'s' * (self.workers != 1)}"
        self._pool: cf.ProcessPoolExecutor | None = None

    def _ensure(self) -> cf.ProcessPoolExecutor:
        if self._pool is None:
            self._pool = cf.ProcessPoolExecutor(max_workers=self.workers)
        return self._pool

    def submit(self, fn: Callable[..., Any], *args: Any, key: str) -> Any:
        try:
            return self._ensure().submit(fn, *args)
        except cf.process.BrokenProcessPool:
            # a worker died: the old pool is unusable, start a fresh one
            self._pool = None
            return self._ensure().submit(fn, *args)

    def wait_any(self, futures: Iterable[Any]) -> list[Any]:
        done, _ = cf.wait(list(futures), return_when=cf.FIRST_COMPLETED)
        return list(done)

    def result(self, future: Any) -> Any:
        try:
            return future.result()
        except cf.process.BrokenProcessPool as exc:
            self._pool = None
            raise WorkerLost(f"worker process died: {exc}") from exc

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def abort(self) -> None:
        if self._pool is not None:
            # a running case may have a simulated day left: do not wait for it. The executor
            # has no public way to stop its workers before Python 3.14 (terminate_workers).
            processes = list(getattr(self._pool, "_processes", {}).values())
            self._pool.shutdown(wait=False, cancel_futures=True)
            for proc in processes:
                proc.terminate()
            for proc in processes:
                proc.join(timeout=5)
            self._pool = None


#: the extra that installs what campaigns on Dask need (pyproject.toml [project.optional-dependencies])
DASK_EXTRA_HINT = "campaigns on Dask need dask and distributed: pip install 'hullwatch[dask]'"


def _distributed() -> tuple[Any, Any]:
    """``(Client, LocalCluster)`` from distributed, imported on first use on purpose: dask is an
    optional extra that only campaigns on Dask need. Raises CampaignError naming the pip install."""
    try:
        # deferred: distributed is the optional [dask] extra, and it costs seconds to import
        from distributed import Client, LocalCluster
    except ImportError as exc:
        raise CampaignError(f"{DASK_EXTRA_HINT} ({exc})") from exc
    return Client, LocalCluster


class DaskPool(CaseExecutor):
    """Dask distributed: a ``LocalCluster`` of ``workers`` single-threaded worker processes it
    starts (``processes=False``: threads in this process, for tests), or an existing scheduler
    by address (``tcp://host:8786``); there the workers must have hullwatch installed."""

    def __init__(self, scheduler: str | None = None, workers: int | None = None, *,
                 processes: bool = True, connect_timeout_s: float = 10.0) -> None:
        Client, LocalCluster = _distributed()

        self._cluster = None
        if scheduler:
            try:
                self._client = Client(scheduler, timeout=f"{connect_timeout_s}s")
            except (OSError, TimeoutError) as exc:
                raise CampaignError(f"cannot reach the Dask scheduler at {scheduler}: {exc}") from exc
            self.workers = max(1, sum(w.get("nthreads", 1)
                                      for w in self._client.scheduler_info()["workers"].values()))
            self.description = f"Dask scheduler {scheduler}, {self.workers} worker threads"
        else:
            n = max(1, int(workers or os.cpu_count() or 1))
            self._cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=processes,
                                         dashboard_address=None, silence_logs=logging.ERROR)
            self._client = Client(self._cluster)
            self.workers = n
            self.description = f"Dask LocalCluster, {n} worker{'s' * (n != 1)}"

    def submit(self, fn: Callable[..., Any], *args: Any, key: str) -> Any:
        return self._client.submit(fn, *args, key=key, pure=False)

    def wait_any(self, futures: Iterable[Any]) -> list[Any]:
        from distributed import wait  # deferred: the optional [dask] extra (see _distributed)

        done, _ = wait(list(futures), return_when="FIRST_COMPLETED")
        return list(done)

    def result(self, future: Any) -> Any:
        # deferred: the optional [dask] extra (see _distributed)
        from distributed import CancelledError
        from distributed.scheduler import KilledWorker  # deferred: the [dask] extra, as above

        try:
            return future.result()
        except (KilledWorker, CancelledError) as exc:
            raise WorkerLost(f"Dask worker lost: {exc}") from exc

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
        if self._cluster is not None:
            self._cluster.close()
            self._cluster = None


# --------------------------------------------------------------------------------------------
# the campaign loop


@dataclass
class Progress:
    """What the progress callback gets after each finished case."""

    total: int  #: cases in the spec
    done: int  #: recorded, including those found from an earlier run
    failed: int  #: recorded with status error/timeout
    resumed: int  #: found recorded at start
    last: dict[str, Any] | None  #: the record just written (None for the first call)


@dataclass
class CampaignRun:
    directory: Path
    total: int
    done: int
    failed: int
    resumed: int
    ran: int  #: cases run by this call
    wall_s: float
    executor: str

    @property
    def complete(self) -> bool:
        return self.done == self.total


def read_records(directory: str | Path) -> dict[str, dict[str, Any]]:
    """The records of ``DIR/cases.jsonl`` by case id (a later line for an id wins). A line cut
    short by an interruption is ignored."""
    path = Path(directory) / RESULTS_FILE
    records: dict[str, dict[str, Any]] = {}
    if not path.exists():
        return records
    with path.open("r", encoding="utf-8") as fh:
        for line in fh:
            line = line.strip()
            if not line:
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue  # the last line of an interrupted run
            if isinstance(rec, dict) and "id" in rec:
                records[rec["id"]] = rec
    return records


def _drop_partial_line(path: Path) -> None:
    """Cut a last line left without its newline by an interruption, so appending starts clean."""
    if not path.exists():
        return
    with path.open("rb+") as fh:
        data = fh.read()
        if data and not data.endswith(b"\n"):
            fh.truncate(data.rfind(b"\n") + 1)


def code_identity() -> str:
    """The hullwatch version, and the git commit of the source tree when it is a checkout
    (``+dirty`` with uncommitted changes): which flight software produced the results."""
    try:
        ident = f"hullwatch {version('hullwatch')}"
    except PackageNotFoundError:
        ident = "hullwatch (not installed)"
    here = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(["git", "-C", str(here), "rev-parse", "--short=12", "HEAD"],
                                capture_output=True, text=True, timeout=10)
        if commit.returncode == 0:
            dirty = subprocess.run(["git", "-C", str(here.parent), "status", "--porcelain", "--untracked-files=no",
                                    "--", "firmware", "sim", "hal", "tools"],
                                   capture_output=True, text=True, timeout=10).stdout.strip()
            ident += f" (git {commit.stdout.strip()}{'+dirty' if dirty else ''})"
    except (OSError, subprocess.SubprocessError):
        pass
    return ident


def _check_manifest(directory: Path, spec: Spec) -> None:
    """Create ``campaign.json`` or check that it is this spec's; note each run's code identity."""
    path = directory / MANIFEST_FILE
    run = {"started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "code": code_identity()}
    manifest = {"spec": spec.name, "source": spec.source, "digest": spec.digest, "seed": spec.seed,
                "total": spec.size, "targets": spec.targets, "runs": [run]}
    if path.exists():
        try:
            old = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise CampaignError(f"{path}: unreadable campaign manifest: {exc}") from exc
        if old.get("digest") != spec.digest:
            raise CampaignError(
                f"{directory} holds a campaign of spec {old.get('spec')!r} ({old.get('source')}), "
                f"not this {spec.name!r} ({spec.source}): use another output directory")
        manifest = {**old, "runs": list(old.get("runs", [])) + [run]}
    directory.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")


def sample_case_ids(spec: Spec, sample: int | None = None, groups: Iterable[str] | None = None) -> list[str]:
    """Case ids of a fraction of ``spec``: the cases of ``groups`` (all groups if None) and, with
    ``sample``, about ``sample`` of them, shared over the groups in proportion to their sizes
    (at least one each) and drawn at random without replacement from a generator seeded by the
    spec's seed and the group name: the same sample every time, and a larger sample holds a
    smaller one's cases only by chance. Raises :class:`CampaignError` for an unknown group."""
    chosen = list(spec.groups)
    if groups is not None:
        names = list(groups)
        known = {g.name for g in spec.groups}
        for n in names:
            if n not in known:
                raise CampaignError(f"no group {n!r} in spec {spec.name!r} (groups: {', '.join(sorted(known))})")
        chosen = [g for g in spec.groups if g.name in names]
    size = sum(g.size for g in chosen)
    out: list[str] = []
    for g in chosen:
        if sample is None or sample >= size:
            out += [case_id(g.name, i) for i in range(g.size)]
            continue
        k = min(g.size, max(1, round(sample * g.size / size)))
        rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence(
            spec.seed, spawn_key=(zlib.crc32(g.name.encode()), 0x5A3F))))
        out += [case_id(g.name, int(i)) for i in sorted(rng.choice(g.size, size=k, replace=False))]
    return out


def run_campaign(spec: Spec, directory: str | Path, executor: CaseExecutor, *,
                 case_fn: CaseFn | None = None,
                 on_progress: Callable[[Progress], None] | None = None,
                 max_cases: int | None = None,
                 retry_failed: bool = False,
                 write_scenarios: bool = True,
                 case_ids: Iterable[str] | None = None) -> CampaignRun:
    """Run the spec's unrecorded cases on ``executor`` and record them in ``directory``.

    ``case_fn(case) -> dict`` runs one case (default
    :func:`hullwatch.tools.campaign.case.run_case`); it must be importable by the workers.
    ``max_cases`` stops after that many new cases (a deliberate cut; re-run to go on).
    ``retry_failed`` runs again the cases recorded as failed. ``case_ids`` runs only those cases
    (e.g. :func:`sample_case_ids`); the run's total is then their number. Interrupting (Ctrl-C)
    keeps every record written so far."""
    fn: CaseFn = case_fn or campaign_case.run_case
    directory = Path(directory)
    _check_manifest(directory, spec)
    records = read_records(directory)
    if retry_failed:
        records = {k: r for k, r in records.items() if r.get("status") == "ok"}
    ids = set(spec.case_ids())
    if case_ids is not None:
        wanted = set(case_ids)
        unknown = sorted(wanted - ids)
        if unknown:
            raise CampaignError(f"no case {unknown[0]!r} in spec {spec.name!r}")
        ids = wanted
    total = len(ids)
    records = {k: r for k, r in records.items() if k in ids}
    resumed = len(records)
    failed = sum(r.get("status") != "ok" for r in records.values())
    todo = (c for c in iter_cases(spec) if c["id"] in ids and c["id"] not in records)
    budget = total if max_cases is None else max(0, int(max_cases))
    window = max(2, 2 * executor.workers)
    pending: dict[Any, tuple[dict[str, Any], int]] = {}
    t0 = time.perf_counter()
    ran = 0
    if write_scenarios:
        (directory / CASES_DIR).mkdir(parents=True, exist_ok=True)
    if on_progress:
        on_progress(Progress(total, len(records), failed, resumed, None))

    def submit(case: dict[str, Any], attempt: int) -> None:
        fut = executor.submit(execute_case, fn, case, key=f"{spec.name}-{case['id']}-{attempt}")
        pending[fut] = (case, attempt)

    _drop_partial_line(directory / RESULTS_FILE)
    with (directory / RESULTS_FILE).open("a", encoding="utf-8") as out:
        try:
            while True:
                while len(pending) < window and budget > 0:
                    case = next(todo, None)
                    if case is None:
                        break
                    if write_scenarios:
                        campaign_case.write_case_scenario(case, directory / CASES_DIR / f"{case['id']}.toml")
                    submit(case, 1)
                    budget -= 1
                if not pending:
                    break
                for fut in executor.wait_any(pending):
                    case, attempt = pending.pop(fut)
                    try:
                        record = executor.result(fut)
                    except WorkerLost as exc:
                        if attempt < MAX_ATTEMPTS:
                            submit(case, attempt + 1)
                            continue
                        record = {"id": case["id"], "seed": case["seed"], "status": "error",
                                  "error": f"WorkerLost: {exc} ({attempt} attempts)", "wall_s": 0.0}
                    record = {**campaign_case.case_summary(case), **record, "attempts": attempt}
                    out.write(json.dumps(record, sort_keys=True, default=str) + "\n")
                    out.flush()
                    records[case["id"]] = record
                    ran += 1
                    failed += record.get("status") != "ok"
                    if on_progress:
                        on_progress(Progress(total, len(records), failed, resumed, record))
        finally:
            for fut in pending:
                fut.cancel()
    return CampaignRun(directory=directory, total=total, done=len(records), failed=failed,
                       resumed=resumed, ran=ran, wall_s=time.perf_counter() - t0,
                       executor=executor.description)
