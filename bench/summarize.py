"""docs/benchmarks.md's issue-7 tables from the reports `bench/tables.sh OUT N` wrote.

    .venv/bin/python bench/summarize.py OUT

Each figure is the median of that figure over the row's runs (`<row>.<i>.json`), taken figure by
figure (so one row's figures may come from different runs); the number of runs is shown. Counts
that must be zero (violations, partners never told) are the maximum over the runs instead.
"""

from __future__ import annotations

import json
import re
import statistics
import sys
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

Report = dict[str, Any]


def load(folder: Path) -> dict[str, list[Report]]:
    """Each row's reports, the rows in tables.sh's order."""
    rows: dict[str, list[Report]] = defaultdict(list)
    for path in sorted(folder.glob("*.json")):
        rows[path.name.split(".")[0]].append(json.loads(path.read_text()))
    script = (Path(__file__).parent / "tables.sh").read_text()
    order = re.findall(r"^run (\S+)", script, flags=re.MULTILINE)
    return dict(sorted(rows.items(), key=lambda row: order.index(row[0])))


def dig(report: Report, path: str) -> Any:
    value: Any = report
    for key in path.split("."):
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return value


def median(runs: Sequence[Report], path: str) -> float | None:
    values = [v for r in runs if isinstance(v := dig(r, path), int | float)]
    return statistics.median(values) if values else None


def total(runs: Sequence[Report], path: str) -> list[int]:
    """Per run, the sum of a dict of counts (errors, dropped, violations); 0 where absent."""
    sums = []
    for r in runs:
        value = dig(r, path)
        sums.append(sum(value.values()) if isinstance(value, dict) else int(value or 0))
    return sums


def fmt(value: float | None, digits: int = 0) -> str:
    if value is None:
        return "\N{EN DASH}"
    if digits == 0 or abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:,.{digits}f}"


def spread(values: Sequence[int]) -> str:
    """Counts over the runs: one figure if all agree, else each run's."""
    return fmt(values[0]) if len(set(values)) == 1 else " / ".join(fmt(v) for v in values)


def pair(runs: Sequence[Report], path: str, a: str = "p50", b: str = "p99") -> str:
    return f"{fmt(median(runs, f'{path}.{a}'), 1)} / {fmt(median(runs, f'{path}.{b}'), 1)}"


def store_of(name: str) -> tuple[str, str]:
    return ("memory", "1") if name.startswith("mem") else ("Redis", name[5])


def churn_table(rows: dict[str, list[Report]]) -> list[str]:
    out = [
        "| run | store | nodes | runs | matches/s | 2nd join → confirmed p50 / p99 ms "
        "| skip → partner_left p50 / p99 ms | server CPU µs / match | µs / skip "
        "| Redis CPU µs / match | dropped | violations |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, runs in rows.items():
        if dig(runs[0], "confirmed_matches_per_s") is None:
            continue
        store, nodes = store_of(name)
        out.append(
            f"| `{name}` | {store} | {nodes} | {len(runs)} "
            f"| {fmt(median(runs, 'confirmed_matches_per_s'))} "
            f"| {pair(runs, 'second_join_to_confirmed_ms')} "
            f"| {pair(runs, 'skip_to_partner_left_ms')} "
            f"| {fmt(median(runs, 'server_cpu_us_per.match'))} "
            f"| {fmt(median(runs, 'server_cpu_us_per.skip'))} "
            f"| {fmt(median(runs, 'redis_cpu_us_per.match'))} "
            f"| {spread(total(runs, 'dropped'))} | {max(total(runs, 'violations'))} |"
        )
    return out


def burst_table(rows: dict[str, list[Report]]) -> list[str]:
    out = [
        "| burst / idle | store | nodes | runs | all confirmed after s "
        "| join → confirmed p50 / p99 ms | never confirmed | joins shed | dropped "
        "| server CPU µs / match | KB per idle connection | violations |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, runs in rows.items():
        if "burst" not in name and "idle" not in name:
            continue
        store, nodes = store_of(name)
        out.append(
            f"| `{name}` | {store} | {nodes} | {len(runs)} "
            f"| {fmt(median(runs, 'all_confirmed_after_s'), 2)} "
            f"| {pair(runs, 'join_to_confirmed_ms')} "
            f"| {spread(total(runs, 'never_confirmed'))} "
            f"| {spread(total(runs, 'errors'))} | {spread(total(runs, 'dropped'))} "
            f"| {fmt(median(runs, 'server_cpu_us_per.match'))} "
            f"| {fmt(median(runs, 'server_kb_per_idle_conn'), 1)} "
            f"| {max(total(runs, 'violations'))} |"
        )
    return out


def round_cpu(report: Report) -> list[float]:
    """Server CPU per skip of each round of a mass skip."""
    return [
        v["server_cpu_us_per_skip"]
        for k, v in report.items()
        if k.startswith("round_") and v.get("server_cpu_us_per_skip") is not None
    ]


def mass_skip_table(rows: dict[str, list[Report]]) -> list[str]:
    out = [
        "| mass skip (rounds of 1,000 pairs skipping at one instant) | runs | skips "
        "| skip → partner_left p50 / p90 / p99 / max ms | partners never told "
        "| server CPU µs / skip (re-pairing included) | violations |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, runs in rows.items():
        if "massskip" not in name:
            continue
        lefts = " / ".join(
            fmt(median(runs, f"skip_to_partner_left_ms.{p}")) for p in ("p50", "p90", "p99", "max")
        )
        per_skip = statistics.median([c for r in runs for c in round_cpu(r)] or [0])
        nodes = store_of(name)[1]
        out.append(
            f"| `{name}` ({nodes} node{'s' if nodes != '1' else ''}) | {len(runs)} "
            f"| {fmt(median(runs, 'skip_to_partner_left_ms.n'))} | {lefts} "
            f"| {max(total(runs, 'partner_left_missing'))} | {fmt(per_skip)} "
            f"| {max(total(runs, 'violations'))} |"
        )
    return out


def main(argv: Sequence[str]) -> None:
    rows = load(Path(argv[1] if len(argv) > 1 else "bench-results"))
    for table in (churn_table(rows), burst_table(rows), mass_skip_table(rows)):
        print("\n".join(table), end="\n\n")


if __name__ == "__main__":
    main(sys.argv)
