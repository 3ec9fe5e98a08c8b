"""The retrain plan: one run per tick for the newest open trigger, outside the cooldown."""

from __future__ import annotations

import datetime as dt

from ml_assets.automation.retrain import RetrainCursor, Trigger, plan_retrains

D = dt.date


def trigger(day: dt.date, record_id: int, check: str = "performance:degradation") -> Trigger:
    return Trigger("check", check, day, record_id, f"run-{record_id}", "")


def test_several_open_triggers_request_one_retrain_on_the_newest() -> None:
    triggers = [
        trigger(D(2013, 4, 6), 10),
        trigger(D(2013, 6, 20), 30, "drift_report:severe_drift"),
        trigger(D(2013, 5, 2), 20),
    ]
    plan = plan_retrains(triggers, RetrainCursor(), cooldown_days=14)
    assert plan.trigger == triggers[1] and plan.newest_day == D(2013, 6, 20)
    assert set(plan.merged) == {triggers[0], triggers[2]}
    assert plan.cursor == RetrainCursor(last_record_id=30, last_retrain_day="2013-06-20")
    # A tick with the returned cursor sees none of them as new.
    again = plan_retrains([], plan.cursor, cooldown_days=14)
    assert again.trigger is None and again.cursor == plan.cursor


def test_a_failed_check_is_named_before_staleness_but_training_reaches_the_newest_day() -> None:
    stale = Trigger("stale", "champion_model:stale", D(2013, 6, 30), 0, "", "40 days > 30")
    check = trigger(D(2013, 6, 12), 8)
    plan = plan_retrains([check, stale], RetrainCursor(), cooldown_days=14)
    assert plan.trigger == check and plan.merged == (stale,)
    assert plan.newest_day == D(2013, 6, 30)


def test_cooldown_is_counted_in_data_days_from_the_last_retrain() -> None:
    cursor = RetrainCursor(last_record_id=5, last_retrain_day="2013-06-01")
    within = [trigger(D(2013, 6, 10), 6)]
    plan = plan_retrains(within, cursor, cooldown_days=14)
    assert plan.trigger is None
    assert plan.cursor == RetrainCursor(last_record_id=6, last_retrain_day="2013-06-01")
    past = [trigger(D(2013, 6, 15), 7), trigger(D(2013, 6, 10), 6)]
    plan = plan_retrains(past, cursor, cooldown_days=14)
    assert plan.trigger == past[0] and plan.cursor.last_retrain_day == "2013-06-15"
