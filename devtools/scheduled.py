"""Airflow's own components driving ``community_sync``: scheduler, dag-processor and the execution API.

`AirflowServices` runs the real Airflow 3 components as subprocesses on a project-local ``AIRFLOW_HOME``
with its metadata in a database of your choosing (PostgreSQL for a scheduler): ``airflow db migrate``,
then the api-server (only its execution API, which the LocalExecutor's task runners report to), the
dag-processor and the scheduler. Runs are started the ways an operator starts them — ``airflow backfill
create`` and ``airflow dags trigger`` — and followed in the metadata database. Leaving the ``with``
block stops every process it started (their whole process groups), on success or failure.

The api-server's port is chosen free and bound by the api-server seconds later, once it has imported
Airflow; another process may take it meanwhile (tests run side by side). `serve` then starts it again on
another port, and takes a port as the api-server's only when the api-server's own processes listen on it;
the dag-processor and the scheduler start after, told the port that answered.

The scheduler is started with ``[scheduler] use_job_schedule = False``: it makes no runs of its own
from the daily timetable (whose latest interval would be today's, not a simulated street's), while
backfills and triggers run as usual.

`day_figures` reads one run's figures from the warehouse (rows read per source, person-key churn) and
scores its reports against a day's truth; `figures_table` prints them, one line a day.

Example::

    with AirflowServices(workdir, dags_folder, config, metadata_url=url, extra_env=creds) as af:
        run_id = af.backfill_day(dt.date(2026, 11, 20))
        af.wait_for(run_id)
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

from islandbridge.config import LOCAL_TZ
from islandbridge.devtools.demo import airflow_env
from islandbridge.errors import TerminalError

DAG_ID = "community_sync"
COMPONENTS = ("api-server", "dag-processor", "scheduler")
PRELOAD = "airflow,airflow.executors.local_executor,islandbridge.pipeline"


class SchedulerRunError(TerminalError):
    """An Airflow component or run did not do what was asked; the message carries the logs' tails.

    Terminal: a developer must read those logs (a run that failed, a component that died)."""


API_ATTEMPTS = 3  # ports tried for the api-server, each lost only to a process that bound it first


def free_port() -> int:
    """A loopback port nobody listens on now (the caller's server must still win it: see `serve`)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(
    command: Callable[[int], list[str]],
    env: Mapping[str, str],
    log: Path,
    *,
    ports: Iterable[int],
    path: str,
    timeout: float = 180,
) -> tuple[subprocess.Popen, int]:
    """Start the server ``command(port)`` on the first of ``ports`` it binds; its process and port once
    it listens there itself and answers ``path`` below HTTP 500.

    A server that exits saying the address is in use lost its port to another process between choosing
    and binding: it is started again on the next port. Raises `SchedulerRunError` with the log's tail
    when the server exits for another reason, does not answer in ``timeout`` seconds, or every port was
    taken; the server is stopped then.

    >>> proc, port = serve(lambda p: ["airflow", "api-server", "--port", str(p)], env, log,
    ...                    ports=(free_port() for _ in range(3)), path="/execution/health")
    """
    taken = []
    for port in ports:
        since = log.stat().st_size if log.exists() else 0
        proc = _spawn(command(port), env, log)
        try:
            if _serving(proc, port, path, log, since, timeout):
                return proc, port
        except BaseException:
            _end([proc])
            raise
        taken.append(port)
    raise SchedulerRunError(
        f"ports {', '.join(map(str, taken))} were each taken by another process before the server bound them"
        f"\n{_tail(log)}"
    )


def _serving(proc: subprocess.Popen, port: int, path: str, log: Path, since: int, timeout: float) -> bool:
    """True once ``proc`` (or a process of its own) listens on ``port`` and answers; False when it exited
    because the address was in use."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            with log.open("rb") as f:
                f.seek(since)
                if b"address already in use" in f.read().lower():
                    return False
            name = " ".join([Path(proc.args[0]).name, *proc.args[1:2]])
            raise SchedulerRunError(f"`{name}` exited with status {proc.returncode}\n{_tail(log)}")
        if _listens(proc.pid, port):
            try:
                if httpx.get(f"http://127.0.0.1:{port}{path}", timeout=2).status_code < 500:
                    return True
            except httpx.HTTPError:
                pass
        time.sleep(1)
    raise SchedulerRunError(f"the server on port {port} did not answer in {timeout:.0f} s\n{_tail(log)}")


def _listens(pid: int, port: int) -> bool:
    """Whether process ``pid`` or one of its descendants listens on ``port`` (not some other process)."""
    import psutil

    try:
        family = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        return False
    for member in family:
        try:
            sockets = member.net_connections(kind="tcp")
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        if any(c.status == psutil.CONN_LISTEN and c.laddr.port == port for c in sockets):
            return True
    return False


def logical_date(day: dt.date) -> dt.datetime:
    """The logical date of the run for ``day``: the start of its data interval, 00:00 Asia/Shanghai."""
    return dt.datetime.combine(day, dt.time(), tzinfo=LOCAL_TZ)


class AirflowServices:
    """The scheduler, dag-processor and api-server on one ``AIRFLOW_HOME``; a context manager."""

    def __init__(
        self,
        workdir: Path,
        dags_folder: Path,
        config: Path,
        *,
        metadata_url: str,
        extra_env: Mapping[str, str] = {},
        parallelism: int = 4,
    ) -> None:
        self.port: int | None = None  # the api-server's, once it answers (`serve`)
        env = airflow_env(workdir, dags_folder, config, dict(extra_env), metadata_url=metadata_url)
        env.update(
            {
                "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
                "AIRFLOW__CORE__PARALLELISM": str(parallelism),
                "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
                "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
                "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
                "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
                # The executor's workers come from a forkserver that has imported the pipeline once;
                # each task forked from them skips seconds of imports (duckdb, pyarrow, pandas, ...).
                "AIRFLOW__SCHEDULER__MP_START_METHOD": "forkserver",
                "AIRFLOW__CORE__MP_FORKSERVER_PRELOAD": PRELOAD,
            }
        )
        self.env = env
        self.home = Path(env["AIRFLOW_HOME"])
        self.logs = self.home / "services"
        self.engine = sa.create_engine(metadata_url)
        self.procs: dict[str, subprocess.Popen] = {}

    # -- lifetime ----------------------------------------------------------------------------------
    def __enter__(self) -> AirflowServices:
        self.logs.mkdir(parents=True, exist_ok=True)
        self._previous_sigterm = signal.signal(signal.SIGTERM, _terminated)  # e.g. `timeout` in CI
        try:
            self.cli("db", "migrate")
            self._start_api()
            self._start("dag-processor")
            self._start("scheduler")
            self._wait_dag()
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        try:
            self.stop()
        finally:
            signal.signal(signal.SIGTERM, self._previous_sigterm)

    def _start(self, component: str, *args: str) -> None:
        self.procs[component] = _spawn(
            [_airflow(), component, *args], self.env, self.logs / f"{component}.log"
        )

    def _start_api(self) -> None:
        """The api-server on a free port (another if a process takes it first: `serve`); the components
        started after it reach it there."""
        api = ["--host", "127.0.0.1", "--workers", "1"]
        self.procs["api-server"], self.port = serve(
            lambda port: [_airflow(), "api-server", *api, "--port", str(port)],
            self.env,
            self.logs / "api-server.log",
            ports=(free_port() for _ in range(API_ATTEMPTS)),
            path="/execution/health",
        )
        self.env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] = f"http://127.0.0.1:{self.port}/execution/"

    def stop(self) -> None:
        """End every component started here and all their descendants (`_end`)."""
        _end(self.procs.values())
        self.procs.clear()
        self.engine.dispose()

    def _check_alive(self) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                raise SchedulerRunError(
                    f"airflow {name} exited with status {proc.returncode}\n{self.tail(name)}"
                )

    def _wait_dag(self, timeout: float = 180) -> None:
        """Until the dag-processor has stored the DAG (a backfill or trigger needs it)."""
        sql = sa.text("SELECT count(*) FROM serialized_dag WHERE dag_id = :d")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._check_alive()
            with self.engine.connect() as con:
                if con.execute(sql, {"d": DAG_ID}).scalar():
                    return
            time.sleep(1)
        raise SchedulerRunError(f"{DAG_ID} was not parsed in {timeout:.0f} s\n{self.tail('dag-processor')}")

    # -- starting runs -----------------------------------------------------------------------------
    def cli(self, *args: str) -> str:
        """``airflow ARGS`` in this environment; its output, or `SchedulerRunError` with it."""
        result = subprocess.run(
            [_airflow(), *args], env=self.env, capture_output=True, text=True, check=False, timeout=600
        )
        if result.returncode != 0:
            raise SchedulerRunError(
                f"`airflow {' '.join(args)}` exited with {result.returncode}:\n"
                f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
            )
        return result.stdout

    def backfill_day(self, day: dt.date) -> str:
        """``airflow backfill create`` for the one day ``day``; the run id Airflow gave its run.

        Airflow allows one unfinished backfill per DAG, and the scheduler marks a backfill complete on
        its own timer, some seconds after the backfill's last run succeeded: wait for that first."""
        when = logical_date(day).isoformat()
        self._wait_backfills_complete()
        self.cli(
            "backfill",
            "create",
            "--dag-id",
            DAG_ID,
            "--max-active-runs",
            "1",
            "--from-date",
            when,
            "--to-date",
            when,
        )
        sql = sa.text(
            "SELECT run_id FROM dag_run WHERE dag_id = :d AND logical_date = :t AND run_type = 'backfill'"
            " ORDER BY id DESC LIMIT 1"
        )
        with self.engine.connect() as con:
            run_id = con.execute(sql, {"d": DAG_ID, "t": logical_date(day)}).scalar()
        if run_id is None:
            raise SchedulerRunError(f"`airflow backfill create` made no run for {day}")
        return run_id

    def _wait_backfills_complete(self, timeout: float = 300) -> None:
        sql = sa.text("SELECT count(*) FROM backfill WHERE dag_id = :d AND completed_at IS NULL")
        deadline = time.monotonic() + timeout
        while True:
            with self.engine.connect() as con:
                if not con.execute(sql, {"d": DAG_ID}).scalar():
                    return
            if time.monotonic() > deadline:
                raise SchedulerRunError(
                    f"a backfill of {DAG_ID} was still not complete after {timeout:.0f} s\n{self.tail('scheduler')}"
                )
            self._check_alive()
            time.sleep(2)

    def trigger(self, run_id: str, conf: Mapping[str, Any] | None = None) -> str:
        """``airflow dags trigger`` with no logical date (and ``conf`` when given)."""
        args = ["dags", "trigger", DAG_ID, "--run-id", run_id]
        if conf is not None:
            args += ["--conf", json.dumps(dict(conf))]
        self.cli(*args)
        return run_id

    def wait_for(self, run_id: str, timeout: float = 600) -> dict[str, Any]:
        """Until the run finishes; its row (state, dates) when it succeeded, else `SchedulerRunError`
        with the failed tasks' log tails and the scheduler's."""
        sql = sa.text(
            "SELECT state, start_date, end_date, logical_date FROM dag_run WHERE dag_id = :d AND run_id = :r"
        )
        deadline = time.monotonic() + timeout
        while True:
            with self.engine.connect() as con:
                row = con.execute(sql, {"d": DAG_ID, "r": run_id}).mappings().first()
            if row and row["state"] == "success":
                return dict(row)
            if row and row["state"] == "failed" or time.monotonic() > deadline:
                state = row["state"] if row else "missing"
                raise SchedulerRunError(f"run {run_id} is {state}\n{self.failure_report(run_id)}")
            self._check_alive()
            time.sleep(2)

    # -- what went wrong ---------------------------------------------------------------------------
    def tail(self, component: str, lines: int = 40) -> str:
        return _tail(self.logs / f"{component}.log", lines)

    def failure_report(self, run_id: str) -> str:
        """The states of the run's tasks, the log tails of those not successful, and the scheduler's."""
        sql = sa.text(
            "SELECT task_id, map_index, state, try_number FROM task_instance WHERE dag_id = :d AND run_id = :r"
            " ORDER BY task_id, map_index"
        )
        with self.engine.connect() as con:
            tasks = con.execute(sql, {"d": DAG_ID, "r": run_id}).all()
        parts = ["tasks: " + ", ".join(f"{t}[{m}]={s}" for t, m, s, _ in tasks)]
        folder = Path(self.env["AIRFLOW__LOGGING__BASE_LOG_FOLDER"]) / f"dag_id={DAG_ID}" / f"run_id={run_id}"
        for task_id, _, state, _ in tasks:
            if state in ("success", "skipped"):
                continue
            for log in sorted((folder / f"task_id={task_id}").rglob("*.log")):
                text = log.read_text(encoding="utf-8", errors="replace").splitlines()
                parts.append(f"--- {log} (last 30 lines) ---\n" + "\n".join(text[-30:]))
        parts.append(self.tail("scheduler"))
        return "\n".join(parts)


def _terminated(signum, frame) -> None:
    raise SystemExit(f"terminated by signal {signum}: stopping the Airflow components first")


def _airflow() -> str:
    return str(Path(sys.executable).with_name("airflow"))


def _spawn(args: list[str], env: Mapping[str, str], log: Path) -> subprocess.Popen:
    """``args`` in a session of its own, its output appended to ``log``."""
    with log.open("ab") as out:
        return subprocess.Popen(
            args,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a Ctrl-C in the terminal reaches the test, which stops it in order
        )


def _end(procs: Iterable[subprocess.Popen]) -> None:
    """End ``procs`` and all their descendants (task runners start sessions of their own, so process
    groups are not enough): SIGTERM, then SIGKILL after 30 s."""
    import psutil

    procs, family = list(procs), []
    for proc in procs:
        try:
            family += [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]
        except psutil.NoSuchProcess:
            pass
    for member in family:
        _send(member, signal.SIGTERM)
    _, alive = psutil.wait_procs(family, timeout=30)
    for member in alive:
        _send(member, signal.SIGKILL)
    psutil.wait_procs(alive, timeout=10)
    for proc in procs:
        proc.wait()


def _tail(path: Path, lines: int = 40) -> str:
    text = path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""
    return f"--- {path} (last {lines} lines) ---\n" + "\n".join(text.splitlines()[-lines:])


def _send(member, sig: int) -> None:
    import psutil

    try:
        member.send_signal(sig)
    except psutil.NoSuchProcess:
        pass


# -- the figures of a day --------------------------------------------------------------------------
def day_figures(con, run_id: str, truth_dir: Path, reports: Iterable[str]) -> dict[str, Any]:
    """One run's start, rows read per source, person-key churn, and its reports' precision and recall
    against ``truth_dir`` (``reports_eval.score_reports``), from the warehouse connection ``con``."""
    from islandbridge.devtools.reports_eval import score_reports
    from islandbridge.landing import raw

    read = {source: c["read"] for source, c in raw.run_summary(con, run_id).items()}
    identity = con.execute(
        "SELECT persons, churn, merges, splits, (SELECT count(*) FROM core.identity_map_changes c "
        "WHERE c.run_id = r.run_id) FROM meta.identity_runs r WHERE run_id = ?",
        [run_id],
    ).fetchone()
    persons, churn, merges, splits, changed = identity or (None,) * 5
    scores = score_reports(con, truth_dir)
    started = con.execute("SELECT started_at FROM meta.runs WHERE run_id = ?", [run_id]).fetchone()
    return {
        "started_at": started[0] if started else None,
        "read": read,
        "persons": persons,
        "churn": churn,
        "merges": merges,
        "splits": splits,
        "map_changes": changed,
        "scores": {r: (scores[r]["precision"], scores[r]["recall"]) for r in reports},
    }


ABBREVIATIONS = {
    "elderly_alerts": "alerts",
    "no_device_coverage": "nodev",
    "senior_allowance_gaps": "gaps",
    "subsidy_after_exit": "subsidy",
}


def figures_table(rows: Iterable[Mapping[str, Any]]) -> list[str]:
    """One line a run: day, run, seconds, rows read per source, persons, churn, P/R per report."""
    rows = list(rows)
    if not rows:
        return []
    sources = sorted({s for r in rows for s in r["read"]})
    reports = list(rows[0]["scores"])
    head = f"{'day':<10} {'how':<9} {'secs':>5} " + " ".join(f"{s[:8]:>8}" for s in sources)
    head += f" {'persons':>7} {'churn':>5} {'mapΔ':>5} " + " ".join(
        f"{ABBREVIATIONS.get(r, r)[:9] + ' P/R':>13}" for r in reports
    )
    lines = [head]
    for r in rows:
        line = f"{r['day']:<10} {r['how']:<9} {r['seconds']:>5.0f} "
        line += " ".join(f"{r['read'].get(s, 0):>8}" for s in sources)
        line += f" {r['persons'] or 0:>7} {r['churn'] or 0:>5} {r['map_changes'] or 0:>5} "
        line += " ".join(f"{p:>6.3f}/{rc:<6.3f}" for p, rc in r["scores"].values())
        lines.append(line)
    return lines
