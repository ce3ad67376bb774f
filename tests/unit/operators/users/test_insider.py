"""Per-user behaviour (insider) with made command histories: each rule fires on its pattern, not on
the benign look-alike next to it; learning from the first command; snapshots are independent."""

from __future__ import annotations

import pickle
from datetime import UTC, datetime

import numpy as np

from twinguard.operators.decode.activity import ActivityBatch
from twinguard.operators.settings import ActivityConfig
from twinguard.operators.users.insider import Reorder, UserJudge, UserStore

CFG = ActivityConfig()
DAY0 = int(datetime(2026, 11, 20, tzinfo=UTC).timestamp() * 1000)
H, MIN = 3_600_000, 60_000


def trained(days: int = 3, seed: int = 0) -> tuple[UserJudge, int]:
    """A judge that saw op.a work devices d0..d9 from 08h to 16h UTC every day, ~ every 3 min."""
    judge, rng = UserJudge(CFG), np.random.default_rng(seed)
    for day in range(days):
        t = DAY0 + day * 24 * H + 8 * H
        while t < DAY0 + day * 24 * H + 16 * H:
            assert judge.observe("op.a", f"d{rng.integers(10)}", "view", t) == []
            t += int(rng.exponential(3 * MIN)) + 1000
    return judge, DAY0 + days * 24 * H + 10 * H  # 10h UTC the next day: on shift


def rules(hits: list) -> set[str]:  # type: ignore[type-arg]
    return {h.rule for h in hits}


def test_a_learned_operator_on_shift_raises_nothing() -> None:
    judge, now = trained()
    for i in range(20):
        assert judge.observe("op.a", f"d{i % 10}", "set", now + i * 2 * MIN) == []


def test_a_burst_of_commands_is_caught_at_burst_min_but_three_quick_ones_are_not() -> None:
    judge, now = trained()
    assert [judge.observe("op.a", "d1", "view", now + i * 2000) for i in range(3)] == [[], [], []]
    hits = [judge.observe("op.a", "d2", "get_config", now + MIN + i * 300) for i in range(8)]
    first = next(i for i, h in enumerate(hits) if h)
    assert first == CFG.burst_min - 1
    hit = hits[first][0]
    assert hit.rule == "rate_burst" and hit.threat == "insider" and hit.user == "op.a"
    assert hit.start == now + MIN and "op.a" in hit.reason
    assert all(not h for h in hits[first + 1:])  # one alert per cooldown


def test_a_sweep_over_foreign_devices_is_caught_but_covering_one_colleague_device_is_not() -> None:
    judge, now = trained()
    assert judge.observe("op.a", "colleague-1", "view", now) == []
    assert judge.observe("op.a", "d3", "view", now + 20 * MIN) == []
    hits = [judge.observe("op.a", f"x{i}", "get_config", now + 40 * MIN + i * 15_000)
            for i in range(5)]
    assert [bool(h) for h in hits] == [False, False, True, False, False]
    assert rules(hits[2]) == {"foreign_devices"}


def test_a_command_at_an_hour_the_user_never_works_is_off_hours() -> None:
    judge, now = trained()
    assert rules(judge.observe("op.a", "d1", "view", now + 12 * H)) == {"off_hours"}  # 22h UTC
    assert judge.observe("op.a", "d1", "view", now + 7 * H) == []  # 17h: next to the shift's end


def test_hours_are_not_judged_before_a_day_of_history() -> None:
    judge = UserJudge(CFG)
    for i in range(80):
        judge.observe("op.new", f"d{i % 5}", "view", DAY0 + 9 * H + i * MIN)
    assert judge.observe("op.new", "d1", "view", DAY0 + 20 * H) == []


def test_dangerous_actions_are_reported_even_while_learning() -> None:
    judge = UserJudge(CFG)
    hits = judge.observe("op.new", "d1", "factory_reset", DAY0)
    assert rules(hits) == {"dangerous_action"} and hits[0].device_id == "d1"


def test_a_new_user_bursting_from_the_start_is_caught() -> None:
    judge = UserJudge(CFG)
    hits = [judge.observe("op.script", "d1", "get_config", DAY0 + i * 200) for i in range(6)]
    assert rules(hits[CFG.burst_min - 1]) == {"rate_burst"}


def test_an_automation_account_with_a_high_usual_rate_is_not_a_burst() -> None:
    judge = UserJudge(CFG)
    hits = [judge.observe("svc.scada", "d1", "view", DAY0 + i * 1500) for i in range(600)]
    assert not any(hits[300:])  # its own learned rate (one per 1.5 s) is its normal


def test_judge_encodes_threats_naming_the_user() -> None:
    judge = UserJudge(CFG)
    acts = ActivityBatch("activity", ["d1"], ["op.x"], ["disable_safety"], [{}], ["10.0.0.9"],
                         [DAY0], [0], [5], [b"{}"])
    out = judge.judge(acts, dry_run=True, now_ms=DAY0 + 10)
    assert [m.role for m in out] == ["threats", "actions"]
    assert b'"user":"op.x"' in out[0].value and b'"target":"op.x"' in out[1].value


def test_snapshot_is_an_independent_copy() -> None:
    judge, now = trained(days=1)
    snap = pickle.loads(pickle.dumps(judge.store.snapshot()))
    before = {k: v.copy() for k, v in snap.arrays.items()}
    judge.observe("op.a", "d1", "view", now)
    judge.observe("op.b", "d1", "view", now)
    assert all(np.array_equal(before[k], snap.arrays[k]) for k in before)
    assert "op.b" not in snap.index
    resumed = UserJudge(CFG, snap)
    resumed.observe("op.c", "d1", "view", now)  # grows from the trimmed copy
    assert isinstance(resumed.store, UserStore) and resumed.store.size == 2


def test_rules_do_not_depend_on_the_order_commands_arrive_in() -> None:
    judge, now = trained()
    # a sweep read from two partitions: the later half first
    order = [3, 1, 2, 0]
    hits = [judge.observe("op.a", f"x{i}", "get_config", now + i * 500) for i in order]
    assert [rules(h) for h in hits].count({"foreign_devices"}) == 1
    judge, now = trained()
    times = [now + i * 300 for i in range(6)]
    hits = [judge.observe("op.a", "d1", "view", t) for t in times[3:] + times[:3]]
    assert any("rate_burst" in rules(h) for h in hits)


def test_reorder_releases_commands_in_event_time_once_every_live_partition_passed_them() -> None:
    r = Reorder(idle_s=5.0)

    def batch(part: int, *ts: int) -> ActivityBatch:
        n = len(ts)
        return ActivityBatch("a", ["d"] * n, ["u"] * n, ["view"] * n, [{}] * n, [None] * n,
                             list(ts), [part] * n, list(range(n)), [b""] * n)
    r.add(batch(0, 10, 20, 30), wall=100.0)
    assert r.due(104.0) == []  # just started: other partitions may not have spoken yet
    r.add(batch(1, 15, 25), wall=104.5)
    assert [row[0] for row in r.due(105.0)] == [10, 15, 20, 25]
    snap = r.copy()
    assert r.due(105.5) == []
    assert [row[0] for row in r.due(110.0)] == [30]  # partition 1 went quiet: no longer waits
    assert [row[0] for row in snap.pending] == [30]
    assert r.due(107.0, everything=True) == []


def test_commands_alike_but_for_a_missing_source_address_are_ordered_not_a_crash() -> None:
    """Found by `twinguard fuzz`: sorting (ts, user, device, action, None) against the same row with
    an address raised TypeError and stopped the flow on every restart."""
    r = Reorder(idle_s=0.0)
    r.add(ActivityBatch("a", ["d", "d"], ["u", "u"], ["view", "view"], [{}, {}],
                        ["10.0.0.1", None], [5, 5], [0, 0], [0, 1], [b"", b""]), wall=1.0)
    assert [row[4] for row in r.due(2.0, everything=True)] == [None, "10.0.0.1"]
