"""`twinguard fuzz`: hostile input against a real `twinguard run` — every attack of issue 18 plus random
mutations of valid messages, each message accounted for (processed or dead-lettered with a reason),
crashes and restarts counted, peak memory measured."""

from twinguard.pipelines.fuzz.model import FuzzConfig, FuzzError
from twinguard.pipelines.fuzz.report import format_table, write_report
from twinguard.pipelines.fuzz.runner import run_fuzz

__all__ = ["FuzzConfig", "FuzzError", "format_table", "run_fuzz", "write_report"]
