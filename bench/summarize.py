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
from collections.abc import Callable, Sequence
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


Runs = Sequence[Report]
# A column: its heading, and its cell from the row's name and runs.
Column = tuple[str, Callable[[str, Runs], str]]


def table(
    rows: dict[str, list[Report]], include: Callable[[str, Runs], bool], columns: Sequence[Column]
) -> list[str]:
    """The rows `include` picks, as a markdown table."""
    out = ["| " + " | ".join(h for h, _ in columns) + " |", "|" + "---|" * len(columns)]
    for name, runs in rows.items():
        if include(name, runs):
            out.append("| " + " | ".join(cell(name, runs) for _, cell in columns) + " |")
    return out


def nodes_of(name: str) -> str:
    return "1" if name.startswith("mem") else name[5]


def per_skip(runs: Runs) -> str:
    """Server CPU per skip over every round of a mass skip (the re-pairing included)."""
    rounds = [
        v["server_cpu_us_per_skip"]
        for r in runs
        for k, v in r.items()
        if k.startswith("round_") and v.get("server_cpu_us_per_skip") is not None
    ]
    return fmt(statistics.median(rounds) if rounds else None)


def med(path: str, digits: int = 0) -> Callable[[str, Runs], str]:
    return lambda _, runs: fmt(median(runs, path), digits)


def counts(path: str) -> Callable[[str, Runs], str]:
    return lambda _, runs: spread(total(runs, path))


def worst(path: str) -> Callable[[str, Runs], str]:
    return lambda _, runs: str(max(total(runs, path)))


LEAD: list[Column] = [
    ("run", lambda name, _: f"`{name}`"),
    ("store", lambda name, _: "memory" if name.startswith("mem") else "Redis"),
    ("nodes", lambda name, _: nodes_of(name)),
    ("runs", lambda _, runs: str(len(runs))),
]
CHURN: list[Column] = [
    *LEAD,
    ("matches/s", med("confirmed_matches_per_s")),
    ("2nd join → confirmed p50 / p99 ms", lambda _, r: pair(r, "second_join_to_confirmed_ms")),
    ("skip → partner_left p50 / p99 ms", lambda _, r: pair(r, "skip_to_partner_left_ms")),
    ("server CPU µs / match", med("server_cpu_us_per.match")),
    ("µs / skip", med("server_cpu_us_per.skip")),
    ("Redis CPU µs / match", med("redis_cpu_us_per.match")),
    ("dropped", counts("dropped")),
    ("violations", worst("violations")),
]
BURST: list[Column] = [
    *LEAD,
    ("all confirmed after s", med("all_confirmed_after_s", 2)),
    ("join → confirmed p50 / p99 ms", lambda _, r: pair(r, "join_to_confirmed_ms")),
    ("never confirmed", counts("never_confirmed")),
    ("joins shed", counts("errors")),
    ("dropped", counts("dropped")),
    ("server CPU µs / match", med("server_cpu_us_per.match")),
    ("KB per idle connection", med("server_kb_per_idle_conn", 1)),
    ("violations", worst("violations")),
]
MASS_SKIP: list[Column] = [
    *LEAD,
    ("skips", med("skip_to_partner_left_ms.n")),
    (
        "skip → partner_left p50 / p90 / p99 / max ms",
        lambda _, runs: " / ".join(
            fmt(median(runs, f"skip_to_partner_left_ms.{p}")) for p in ("p50", "p90", "p99", "max")
        ),
    ),
    ("partners never told", worst("partner_left_missing")),
    ("server CPU µs / skip (re-pairing included)", lambda _, runs: per_skip(runs)),
    ("violations", worst("violations")),
]


def main(argv: Sequence[str]) -> None:
    rows = load(Path(argv[1] if len(argv) > 1 else "bench-results"))
    for lines in (
        table(rows, lambda _, runs: dig(runs[0], "confirmed_matches_per_s") is not None, CHURN),
        table(rows, lambda name, _: "burst" in name or "idle" in name, BURST),
        table(rows, lambda name, _: "massskip" in name, MASS_SKIP),
    ):
        print("\n".join(lines), end="\n\n")


if __name__ == "__main__":
    main(sys.argv)
