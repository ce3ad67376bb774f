"""`twinguard chaos`: a reliability report — SIGKILL the dataflow, stop the broker, account every message.

A live simulated fleet (event time = wall-clock time) is produced to fresh topics while `twinguard run`
with Bytewax recovery is killed and restarted N times and the broker is stopped for S seconds. The
output topics are then audited: every input is processed or dead-lettered exactly once, re-emitted
threats keep their ids, and the distinct threats are compared with an in-process run over the same
input. Differences are located relative to the disturbances and checked for order sensitivity (does
the reference itself change when only the interleaving of the partitions changes?).
"""

from twinguard.pipelines.chaos.experiment import run_chaos
from twinguard.pipelines.chaos.model import ChaosConfig, ChaosError
from twinguard.pipelines.chaos.report import format_table, write_report

__all__ = ["ChaosConfig", "ChaosError", "format_table", "run_chaos", "write_report"]
