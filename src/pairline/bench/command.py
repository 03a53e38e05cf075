"""`pairline bench`: the flags, and one run from deployment to verdict.

Only click and the plain option types are imported here, so that `pairline serve` does not pay
for the load generator; the rest is imported when the command runs.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from pairline.bench.config import Mode, Options
from pairline.bench.model import Churn

_DEFAULT = Churn()
_KNOBS = (
    *("skip_p", "block_p", "drop_p", "ignore_matched"),
    *("talk_min", "talk_max", "rejoin_min", "rejoin_max"),
)
_MODES: tuple[Mode, ...] = ("burst", "idle", "mass_skip")  # the flags besides churn
F = TypeVar("F", bound=Callable[..., Any])


def _churn_option(name: str, help_: str, default: float) -> Callable[[F], F]:
    return click.option(f"--{name}", type=float, default=default, show_default=True, help=help_)


def execute(opts: Options) -> dict[str, Any]:
    """Run the benchmark `opts` describes; return its report (report.analyze, plus the nodes'
    log summary)."""
    from pairline.bench.checker import check
    from pairline.bench.driver import run
    from pairline.bench.log import write_events
    from pairline.bench.report import analyze, server_log_summary

    raw, dep, lines, deleted = run(opts)
    if opts.events_path is not None:
        write_events(opts.events_path, raw["log"])
    report = analyze(raw, opts, check(raw["log"]))
    if dep.prefix:
        report["redis_prefix"] = f"{dep.prefix} ({deleted} keys deleted after the run)"
    report["server_log"] = server_log_summary(lines, raw["t1"]) if dep.servers else None
    report["server_log_tail"] = lines[-50:]
    return report


@click.command("bench", context_settings={"show_default": True})
@click.option("--users", type=int, default=1000, help="Simulated users.")
@click.option("--procs", type=int, default=2, help="Load-generator worker processes.")
@click.option("--url", "url", default=None, help="Target running nodes: URL[,URL...].")
@click.option("--spawn", is_flag=True, help="Start the nodes here (the default without --url).")
@click.option(
    "--server-pid",
    type=int,
    multiple=True,
    help="With --url: each node's pid, in --url's order, for its CPU and memory.",
)
@click.option("--nodes", type=int, default=1, help="Nodes to spawn (> 1 needs --redis).")
@click.option(
    "--redis",
    metavar="URL|spawn",
    default=None,
    help="Nodes share this Redis (a fresh key prefix); `spawn`: a private redis-server.",
)
@click.option("--script-mix", is_flag=True, help="Per-script Redis cost (SLOWLOG; spawn only).")
@click.option("--ws", type=click.Choice(["native", "asgi"]), default="native")
@click.option("--server-env", multiple=True, metavar="NAME=VALUE", help="For spawned nodes.")
@click.option("--duration", type=float, default=20.0, help="Measured window, s.")
@click.option("--warmup", type=float, default=3.0, help="Unmeasured seconds after the joins.")
@click.option(
    "--grace", type=float, default=2.0, help="After the window: read on until this quiet, s."
)
@click.option("--burst", is_flag=True, help="All users join at once and stay in that call.")
@click.option("--idle", is_flag=True, help="Connect and never join (memory, pings).")
@click.option(
    "--mass-skip", is_flag=True, help="All in a call, then one side of every pair skips at once."
)
@click.option("--rounds", type=int, default=3, help="--mass-skip: synchronised skips.")
@click.option("--chat-interval", type=float, default=0.0, help="A chat every S s in a call.")
@_churn_option("skip-p", "Hang-ups that skip.", _DEFAULT.skip_p)
@_churn_option("block-p", "Hang-ups that block (the rest end).", _DEFAULT.block_p)
@_churn_option("drop-p", "Hang-ups that drop and resume.", _DEFAULT.drop_p)
@_churn_option("ignore-matched", "Users that never ack matched.", _DEFAULT.ignore_matched)
@_churn_option("talk-min", "Shortest talk, s.", _DEFAULT.talk_min)
@_churn_option("talk-max", "Longest talk, s.", _DEFAULT.talk_max)
@_churn_option("rejoin-min", "Shortest pause before joining again, s.", _DEFAULT.rejoin_min)
@_churn_option("rejoin-max", "Longest pause before joining again, s.", _DEFAULT.rejoin_max)
@click.option("--seed", type=int, default=1)
@click.option("--json", "json_path", default=None, help="Also write the report here (- : stdout).")
@click.option(
    "--events", "events_path", default=None, help="Write the event log here (JSON lines)."
)
def bench_command(**flags: Any) -> None:
    """Load-test pairline: N users churning through 1:1 matches; throughput, latency, server
    CPU per match and skip, memory per connection, and protocol.md §4's invariants checked on
    the event log. Exits 1 when any invariant is broken (docs/benchmarks.md)."""
    from pairline.bench.report import failed, print_report, to_json

    opts = options_from(flags)
    problems = opts.problems()
    if problems:
        raise click.UsageError("; ".join(problems))
    report = execute(opts)
    if opts.json_path == Path("-"):
        sys.stdout.write(to_json(report))
    else:
        print_report(report)
        if opts.json_path is not None:
            opts.json_path.write_text(to_json(report))
    if failed(report):
        sys.exit(1)


def options_from(flags: dict[str, Any]) -> Options:
    """The command's flags as Options (click checks each; Options.problems the whole)."""
    modes = [mode for mode in _MODES if flags[mode]]
    if len(modes) > 1:
        raise click.UsageError("--burst, --idle and --mass-skip exclude each other")
    if flags["url"] and flags["spawn"]:
        raise click.UsageError("--url targets running nodes; --spawn starts them: not both")
    churn = Churn(**{name: flags[name] for name in _KNOBS})
    return Options(
        users=flags["users"],
        procs=flags["procs"],
        urls=tuple(u.strip().rstrip("/") for u in (flags["url"] or "").split(",") if u.strip()),
        server_pids=tuple(flags["server_pid"]),
        nodes=flags["nodes"],
        redis=flags["redis"],
        script_mix=flags["script_mix"],
        ws=flags["ws"],
        server_env=tuple(flags["server_env"]),
        duration=flags["duration"],
        warmup=flags["warmup"],
        grace=flags["grace"],
        mode=modes[0] if modes else "churn",
        rounds=flags["rounds"],
        chat_interval=flags["chat_interval"],
        churn=churn,
        seed=flags["seed"],
        json_path=Path(flags["json_path"]) if flags["json_path"] else None,
        events_path=Path(flags["events_path"]) if flags["events_path"] else None,
    )
