"""Fatal errors: the message twinguard built is shown first, not Bytewax's wrapper."""

from __future__ import annotations

import bytewax.operators as op
import pytest
from bytewax.dataflow import Dataflow
from bytewax.testing import TestingSink, TestingSource, run_main

from twinguard.operators.decode.brake import DeadLetterBrakeError
from twinguard.pipelines.fatal import chain, describe


def _brake(_: int) -> int:
    raise DeadLetterBrakeError("dead-letter brake on t[0]: 5000 in a row; fix the producer")


def _bug(x: int) -> int:
    return {1: 2}[x + 5]


def _failure(step: object) -> BaseException:
    """What Bytewax raises when `step` raises inside a running dataflow."""
    flow = Dataflow("fatal")
    out: list[int] = []
    op.output("out", op.map("decode", op.input("in", flow, TestingSource([1])), step),
              TestingSink(out))
    with pytest.raises(Exception) as info:  # noqa: PT011 - Bytewax's wrapper is what we get
        run_main(flow)
    return info.value


def test_the_root_cause_of_a_step_failure_is_the_headline() -> None:
    text = describe(_failure(_brake), "twinguard run")
    first, *rest = text.splitlines()
    assert first == ("twinguard run: error: dead-letter brake on t[0]: 5000 in a row; fix the "
                     "producer")
    assert any('in dataflow step fatal.decode' in line for line in rest)
    assert "BytewaxRuntimeError" in text and "DeadLetterBrakeError" in text.splitlines()[-1]
    assert "raised at" not in text  # our own errors say what to fix; no source location needed


def test_an_unexpected_error_names_its_type_and_where_it_was_raised() -> None:
    text = describe(_failure(_bug), "twinguard run")
    assert text.startswith("twinguard run: error: KeyError: 6")
    assert "raised at tests/unit/pipelines/test_fatal.py" in text and "in _bug" in text


def test_a_plain_error_stays_one_line() -> None:
    assert describe(ValueError("bad --top"), "twinguard risk") == "twinguard risk: error: bad --top"


def test_chain_follows_causes_and_contexts_but_not_cycles() -> None:
    a, b = RuntimeError("a"), KeyError("b")
    a.__cause__, b.__context__ = b, a  # a cycle
    assert chain(a) == [a, b]
