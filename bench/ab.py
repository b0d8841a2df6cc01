"""Two builds of propsec against each other on the write path, interleaved:
`python -m bench.ab BASE [CHANGE] [--setup sqlite] [--writers 8] [--pairs 6] [--seconds 4]`.

BASE and CHANGE are git revisions (CHANGE defaults to `.`, the working tree as it is, edits
included). Each is checked out into a temporary worktree and served by its own process,
both started before the first measurement and alive until the last, on the server core;
the load generator drives them in turn (A B, B A, A B, ...) with the write job of
bench/write.py (`add-alert`, `add-visitor`, `add-auth-entry` from closed-loop writers, a
subscriber checking every event against the log). Prints each run, the ratio change/base of
every pair, and the medians of writes/s and of server CPU per write.

Why this and not two full runs: on a shared host the speed drifts by 10-20 % within
minutes, so two runs made minutes apart differ by more than most changes do. Pairs taken
seconds apart see the same host; their ratio is the measure (docs/performance.md, tenth
round). No target, no report file: it answers "is B faster than A, and by how much"."""
from __future__ import annotations

import argparse
import statistics
import subprocess
import tempfile
from contextlib import ExitStack, contextmanager
from pathlib import Path

from .run import fresh_database, log
from .servers import ROOT, SERVER_CPU, propsec_server
from .write import GENERATOR, Profile, add_generator_option, setups, write_job

PROPERTY_IDS = list(range(1, 91))  # lots 1-90 of every site are ACTIVE (bench.dataset)


@contextmanager
def checkout(revision: str):
    """The tree of `revision` in a temporary worktree (`.`: this working tree as it is)."""
    if revision == ".":
        yield ROOT
        return
    where = Path(tempfile.mkdtemp(prefix="propsec-ab-")) / "tree"
    subprocess.run(["git", "worktree", "add", "--detach", "--quiet", str(where), revision],
                   cwd=ROOT, check=True)
    try:
        yield where
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(where)], cwd=ROOT,
                       check=False)


def start(tree: Path, label: str, setup: str, database_url: str | None, redis_url: str,
          workdir: Path) -> tuple[list, dict]:
    """The servers of one side (two processes for postgresql+redis) on a fresh data set."""
    (_, base, processes, extra), = setups(database_url, redis_url, only=(setup,))
    url, meta = fresh_database(base, f"ab_{label}", (200, 1, 1), workdir, reuse=False,
                               root=tree)  # (its own migrations: the two may differ)
    if "PROPSEC_MESSAGE_QUEUE_CHANNEL" in extra:  # (each side's processes talk among themselves)
        extra = {**extra, "PROPSEC_MESSAGE_QUEUE_CHANNEL":
                 f"{extra['PROPSEC_MESSAGE_QUEUE_CHANNEL']}-{label}"}
    servers = [propsec_server(url, "eventlet", workdir, SERVER_CPU, tree, **extra).start()
               for _ in range(processes)]
    return servers, meta


def one_run(servers: list, meta: dict, writers: int, profile: Profile) -> dict:
    result = write_job("propsec", [s.url for s in servers], meta["tokens"]["staff"], writers,
                       profile, PROPERTY_IDS, [s.pid for s in servers])
    check = result["check"]
    return {"writes": result["throughput"],
            "cpu_ms": sum(result["server_cpu"]) / max(result["throughput"], 1e-9) * 1000,
            "delivery_p99": result["delivery_p99_ms"], "errors": result["errors"],
            "bad": check["lost"] + check["duplicates"] + check["out_of_order"]}


def compare(base: str, change: str, setup: str, writers: int, pairs: int, seconds: float,
            database_url: str | None, redis_url: str) -> dict:
    profile = Profile("ab", seconds=seconds, warmup=min(1.0, seconds), rounds=1)
    runs: dict[str, list[dict]] = {"A": [], "B": []}
    with ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="propsec-ab-")))
        sides = {}
        for side, revision in (("A", base), ("B", change)):
            tree = stack.enter_context(checkout(revision))
            servers, meta = start(tree, side.lower(), setup, database_url, redis_url, workdir)
            for server in servers:
                stack.callback(server.stop)
            sides[side] = (servers, meta)
        warm = Profile("warm-up", seconds=0.5, warmup=0.5, rounds=1)
        for servers, meta in sides.values():  # (first requests prepare and cache: untimed)
            one_run(servers, meta, writers, warm)
        for index in range(pairs):
            for side in ("A", "B") if index % 2 == 0 else ("B", "A"):
                run = one_run(*sides[side], writers, profile)
                runs[side].append(run)
                log(f"pair {index + 1} of {pairs}, {side} ({base if side == 'A' else change}): "
                    f"{run['writes']:,.0f} writes/s, {run['cpu_ms']:.3f} ms CPU a write, "
                    f"delivery p99 {run['delivery_p99']:.1f} ms, errors {run['errors']}, "
                    f"lost/twice/out of order {run['bad']}")
    ratios = [b["writes"] / a["writes"] for a, b in zip(runs["A"], runs["B"])]
    return {"ratios": ratios, "median_ratio": statistics.median(ratios),
            "writes": {s: statistics.median(r["writes"] for r in runs[s]) for s in runs},
            "cpu_ms": {s: statistics.median(r["cpu_ms"] for r in runs[s]) for s in runs},
            "faults": sum(r["errors"] + r["bad"] for side in runs.values() for r in side)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.ab", description=__doc__.split("\n")[0])
    parser.add_argument("base", help="git revision of A, e.g. HEAD or main~1")
    parser.add_argument("change", nargs="?", default=".",
                        help="git revision of B (default `.`: the working tree)")
    parser.add_argument("--setup", choices=("sqlite", "postgresql", "postgresql+redis"),
                        default="sqlite")
    parser.add_argument("--writers", type=int, default=8)
    parser.add_argument("--pairs", type=int, default=6)
    parser.add_argument("--seconds", type=float, default=4.0, help="measured seconds a run")
    parser.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    add_generator_option(parser)
    args = parser.parse_args(argv)
    GENERATOR["name"] = args.generator
    found = compare(args.base, args.change, args.setup, args.writers, args.pairs, args.seconds,
                    args.database_url, args.redis_url)
    print(f"{args.setup}, {args.writers} writers, {args.pairs} pairs of {args.seconds:g} s")
    print(f"A {args.base}: {found['writes']['A']:,.0f} writes/s, "
          f"{found['cpu_ms']['A']:.3f} ms CPU a write (medians)")
    print(f"B {args.change}: {found['writes']['B']:,.0f} writes/s, "
          f"{found['cpu_ms']['B']:.3f} ms CPU a write (medians)")
    print("B/A each pair: " + ", ".join(f"{r:.3f}" for r in found["ratios"])
          + f"; median {found['median_ratio']:.3f}")
    if found["faults"]:
        print(f"errors, lost, duplicated or out-of-order events: {found['faults']}")
        raise SystemExit(1)


if __name__ == "__main__":
    main()
