"""`pairline bench`: a load benchmark of matchmaking with an invariant checker.

- model.py: the churn model (join, talk, skip/end/block, drop and resume, users that ignore
  `matched`);
- loadgen.py: worker processes of lean raw-protocol users that follow it and log every event;
- checker.py: protocol.md §4's invariants, checked on that log;
- driver.py: the nodes and Redis under test (spawned or given), /proc readings, the phases;
- report.py: throughput, latency percentiles, CPU per unit of work, memory, the verdict;
- command.py: the click command; docs/benchmarks.md explains the flags and every figure.
"""

from pairline.bench.command import bench_command

__all__ = ["bench_command"]
