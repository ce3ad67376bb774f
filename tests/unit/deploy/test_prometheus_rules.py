"""The alerting rules in deploy/prometheus/ are valid and fire exactly as their test file expects
(real promtool), and they only use metrics twinguard exports."""

from __future__ import annotations

import re
from pathlib import Path

from tests.support.metrics import REPO, exported_names, run_promtool

RULES = "deploy/prometheus/twinguard-rules.yml"
RULE_TESTS = "deploy/prometheus/twinguard-rules.test.yml"


def test_rules_pass_promtool_check() -> None:
    res = run_promtool("check", "rules", RULES)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "SUCCESS: 4 rules found" in res.stdout


def test_rules_fire_as_the_rule_tests_expect() -> None:
    res = run_promtool("test", "rules", RULE_TESTS)
    assert res.returncode == 0, res.stdout + res.stderr


def test_a_broken_expectation_fails(tmp_path: Path) -> None:
    """The rule tests can fail: a storm threshold nobody reaches makes the storm test fail."""
    work = tmp_path
    rules = (REPO / RULES).read_text().replace("* 60 > 60", "* 60 > 6000")
    assert rules != (REPO / RULES).read_text()
    (work / "twinguard-rules.yml").write_text(rules)
    (work / "twinguard-rules.test.yml").write_text((REPO / RULE_TESTS).read_text())
    res = run_promtool("test", "rules", str(work / "twinguard-rules.test.yml"))
    assert res.returncode != 0 and "TwinguardThreatStorm" in res.stdout + res.stderr


def test_rules_name_only_exported_metrics() -> None:
    used = set(re.findall(r"\btwinguard_[a-z0-9_]+", (REPO / RULES).read_text()))
    assert used and used <= exported_names(), used - exported_names()
