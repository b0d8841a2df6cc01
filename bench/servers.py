"""Server processes for the benchmark: propsec (`python app.py`) and the bare echo server.

Each runs pinned to one core with `taskset` (the load generator gets the other), on a free
loopback port, and is stopped by its own process id."""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Cores: the server under test gets one, the load generator the other.
SERVER_CPU = "1"
GENERATOR_CPU = "0"
# `--nice N` (negative: ahead of everything else on a shared machine); 0 leaves it alone.
PRIORITY = {"nice": 0}
# Effectively no per-connection rate limit: the benchmark floods on purpose.
BENCH_RATE_LIMIT = "1000000/1000000"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pinned(cpu: str, argv: list[str]) -> list[str]:
    """`taskset -c cpu argv` where taskset exists and the core does (under `nice` when a
    priority was asked for); argv otherwise."""
    if shutil.which("taskset") and (os.cpu_count() or 1) > max(int(c) for c in cpu.split(",")):
        argv = ["taskset", "-c", cpu, *argv]
    if PRIORITY["nice"]:
        argv = ["nice", "-n", str(PRIORITY["nice"]), *argv]
    return argv


def _postgres_pids() -> list[int]:
    """The processes of this machine's PostgreSQL server (postmaster, backends, workers)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == "postgres":
                    found.append(int(entry.name))
            except OSError:
                pass
    return found


@contextmanager
def database_on(cpu: str | None):
    """Run the local PostgreSQL server on core(s) `cpu` for the block (None: leave it be).
    The server under test then has its core to itself, as the floor's server has: in a
    deployment the database is another machine. Backends started meanwhile inherit the
    postmaster's cores; afterwards every PostgreSQL process gets all cores back."""
    if cpu is None or not hasattr(os, "sched_setaffinity"):
        yield
        return
    cores = {int(c) for c in cpu.split(",")}
    for pid in _postgres_pids():
        try:
            os.sched_setaffinity(pid, cores)
        except OSError:  # (not ours to move, or gone)
            pass
    try:
        yield
    finally:
        everything = set(range(os.cpu_count() or 1))
        for pid in _postgres_pids():
            try:
                os.sched_setaffinity(pid, everything)
            except OSError:
                pass


def stop_process(process: subprocess.Popen | None, sig: int = signal.SIGTERM) -> None:
    """Stop a server process: `sig` (TERM: a clean exit), then KILL if it lingers past 10 s.
    The test suite's live servers (tests/live.py) stop the same way."""
    if process is not None and process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def proc_cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


class Server:
    """One server process on 127.0.0.1:<free port>, up once GET /healthz answers 200."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log_dir: Path,
                 port_variable: str, cpu: str = SERVER_CPU, root: Path = ROOT):
        self.name = name
        self.root = root  # the checkout it runs from
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.argv = pinned(cpu, argv)
        self.env = {**os.environ, **env, port_variable: str(self.port), "PYTHONUNBUFFERED": "1"}
        self.log_path = log_dir / f"{name}-{self.port}.log"
        self.process: subprocess.Popen | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self, timeout: float = 60) -> "Server":
        self._log = open(self.log_path, "ab")
        self.process = subprocess.Popen(self.argv, cwd=self.root, env=self.env, stdout=self._log,
                                        stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited early:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=1) as response:
                    if response.status == 200:
                        return self
            except OSError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"{self.name} did not come up:\n{self.log_tail()}")

    def log_tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:]

    def stop(self) -> None:
        stop_process(self.process)
        self.process = None
        if getattr(self, "_log", None):
            self._log.close()

    def __enter__(self) -> "Server":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def propsec_server(database_url: str, async_mode: str, log_dir: Path, cpu: str = SERVER_CPU,
                   root: Path = ROOT, **extra: str) -> Server:
    """`extra`: more PROPSEC_* settings (a message queue for several processes); `cpu`: the
    core(s) to pin it to, `taskset` style; `root`: the checkout to run (bench/ab.py runs
    two)."""
    env = {"PROPSEC_DATABASE_URL": database_url, "PROPSEC_ASYNC_MODE": async_mode,
           "PROPSEC_HOST": "127.0.0.1", "PROPSEC_SEED_DEMO": "0",
           "PROPSEC_SECRET_KEY": "bench-secret-key", "PROPSEC_RATE_LIMIT": BENCH_RATE_LIMIT,
           **extra}
    return Server("propsec", [sys.executable, "app.py"], env, log_dir, "PROPSEC_PORT", cpu,
                  root)


def echo_server(async_mode: str, log_dir: Path) -> Server:
    env = {"PROPSEC_ASYNC_MODE": async_mode, "BENCH_HOST": "127.0.0.1"}
    return Server("echo", [sys.executable, "bench/echo_server.py"], env, log_dir, "BENCH_PORT")
