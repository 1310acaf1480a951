"""`d11 bench process --compare-pgbench`: the same payment on one PostgreSQL.

The comparison the issue set: PostgreSQL with fsync on, a two-row transfer
(`BEGIN; UPDATE ... -amt; UPDATE ... +amt; COMMIT`) over 10,000 accounts,
driven by pgbench with as many clients as the ledger bench keeps requests
in flight. It runs on a throwaway cluster (initdb in a temporary folder,
a Unix socket only, removed afterwards) on the same disk as the replicas'
files, right after the ledger bench, so both figures come from one sitting.

Nothing here is needed by the project: when pgbench, initdb or pg_ctl is
missing, or the server cannot be run (PostgreSQL refuses to run as root
and there is no `postgres` user to run it as), the comparison is skipped
with one line saying why.
"""

from __future__ import annotations

import contextlib
import glob
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

ACCOUNTS = 10_000
PGBENCH_THREADS = 2  # the machine's cores; pgbench's own client threads
MAX_TRIES = 100  # deadlocks between opposite transfers are retried, as a client would
COMMAND_TIMEOUT_S = 120.0

TRANSFER_SCRIPT = f"""\\set a random(1, {ACCOUNTS})
\\set b random(1, {ACCOUNTS})
\\set amt random(1, 100)
BEGIN;
UPDATE accounts SET balance = balance - :amt WHERE id = :a;
UPDATE accounts SET balance = balance + :amt WHERE id = :b;
COMMIT;
"""


class PgbenchUnavailable(RuntimeError):
    """pgbench cannot be run here; the message says why (one line)."""


@dataclass(frozen=True)
class PgbenchResult:
    clients: int
    seconds: float
    tps: float
    latency_avg_ms: float
    failed: int


def _server_bindir() -> Path | None:
    """Where initdb and pg_ctl are: beside one on PATH, pg_config's, or Debian's."""
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    pg_config = shutil.which("pg_config")
    if pg_config:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, timeout=10, check=True
            )
            bindir = Path(out.stdout.strip())
            if (bindir / "initdb").exists():
                return bindir
    debian = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True)
    return Path(debian[0]).parent if debian else None


def _as_server_user() -> list[str]:
    """The prefix that runs a command as a user PostgreSQL accepts (not root)."""
    if os.geteuid() != 0:
        return []
    import pwd

    try:
        pwd.getpwnam("postgres")
    except KeyError:
        raise PgbenchUnavailable(
            "PostgreSQL will not run as root and there is no postgres user"
        ) from None
    runuser = shutil.which("runuser")
    if runuser is None:
        raise PgbenchUnavailable("running as root, and no runuser to run PostgreSQL as postgres")
    return [runuser, "-u", "postgres", "--"]


def run_pgbench(*, clients: int, seconds: float) -> PgbenchResult:
    """Start a throwaway PostgreSQL, load the accounts, run pgbench, stop it."""
    pgbench = shutil.which("pgbench")
    if pgbench is None:
        raise PgbenchUnavailable("pgbench is not on PATH")
    bindir = _server_bindir()
    if bindir is None:
        raise PgbenchUnavailable("pgbench is on PATH but initdb is not (no PostgreSQL server)")
    prefix = _as_server_user()
    workdir = Path(tempfile.mkdtemp(prefix="d11-pgbench-"))
    if prefix:
        shutil.chown(workdir, user="postgres")
    data = workdir / "data"
    script = workdir / "transfer.sql"
    script.write_text(TRANSFER_SCRIPT)
    if prefix:
        shutil.chown(script, user="postgres")

    def run(*argv: str | Path) -> str:
        try:
            done = subprocess.run(
                [*prefix, *map(str, argv)],
                capture_output=True,
                text=True,
                timeout=COMMAND_TIMEOUT_S + seconds,
                cwd=workdir,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise PgbenchUnavailable(f"{Path(argv[0]).name} failed: {exc}") from None
        if done.returncode != 0:
            last = (done.stderr.strip() or done.stdout.strip()).splitlines()[-1:] or ["?"]
            raise PgbenchUnavailable(f"{Path(argv[0]).name} failed: {last[0]}")
        return done.stdout

    started = False
    try:
        run(bindir / "initdb", "-D", data, "-A", "trust", "-U", "postgres", "--no-sync")
        options = f"-k {workdir} -c listen_addresses='' -c fsync=on -c synchronous_commit=on"
        run(bindir / "pg_ctl", "-D", data, "-o", options, "-l", workdir / "log", "-w", "start")
        started = True
        psql = bindir / "psql"
        if not psql.exists():
            psql = Path(shutil.which("psql") or "psql")
        for sql in (
            "CREATE TABLE accounts (id int PRIMARY KEY, balance bigint NOT NULL)",
            f"INSERT INTO accounts SELECT g, 1000000 FROM generate_series(1, {ACCOUNTS}) g",
            "VACUUM ANALYZE accounts",
            "CHECKPOINT",
        ):
            run(psql, "-h", workdir, "-U", "postgres", "-d", "postgres", "-qc", sql)
        out = run(
            pgbench, "-h", workdir, "-U", "postgres", "-n", "-f", script,
            "-c", str(clients), "-j", str(min(PGBENCH_THREADS, clients)),
            "-T", str(max(1, round(seconds))), f"--max-tries={MAX_TRIES}", "postgres",
        )  # fmt: skip
    finally:
        if started:
            with contextlib.suppress(PgbenchUnavailable):
                run(bindir / "pg_ctl", "-D", data, "-m", "immediate", "-w", "stop")
        shutil.rmtree(workdir, ignore_errors=True)
    return _parse(out, clients, seconds)


def _parse(out: str, clients: int, seconds: float) -> PgbenchResult:
    tps = re.search(r"^tps = ([\d.]+)", out, re.M)
    latency = re.search(r"^latency average = ([\d.]+) ms", out, re.M)
    failed = re.search(r"^number of failed transactions: (\d+)", out, re.M)
    if tps is None or latency is None:
        raise PgbenchUnavailable("pgbench printed no tps / latency line")
    return PgbenchResult(
        clients=clients,
        seconds=seconds,
        tps=float(tps.group(1)),
        latency_avg_ms=float(latency.group(1)),
        failed=int(failed.group(1)) if failed else 0,
    )
