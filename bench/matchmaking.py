"""Load benchmark of pairline's matchmaking: now `pairline bench` (src/pairline/bench/).

    .venv/bin/python bench/matchmaking.py --users 1000 [any flag of `pairline bench`]

Kept so that the commands in docs/benchmarks.md reproduce their rows: it runs `pairline bench`
with the churn model those rows were measured with (skip or end, half each: no drops, no blocks,
no users that ignore `matched`); flags given here still win. docs/benchmarks.md ("Running
`pairline bench`") describes the flags and every figure.
"""

from __future__ import annotations

import sys

from pairline.bench import bench_command
from pairline.bench.model import CLASSIC

CLASSIC_FLAGS = [
    *("--drop-p", str(CLASSIC.drop_p)),
    *("--block-p", str(CLASSIC.block_p)),
    *("--ignore-matched", str(CLASSIC.ignore_matched)),
]

if __name__ == "__main__":
    # click keeps the last value of a repeated option: the caller's flags override these.
    bench_command.main([*CLASSIC_FLAGS, *sys.argv[1:]], prog_name="bench/matchmaking.py")
