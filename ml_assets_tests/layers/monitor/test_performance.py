"""The degradation bound: chance on the holdout first, then the dataset's own production gap."""

import datetime as dt

import pytest

from ml_assets.layers.monitor.performance import Expectation, JudgedDay, degradation_bound

DAY = dt.date(2013, 6, 1)


def expectation(metric: str = "roc_auc", **kw) -> Expectation:
    base = dict(
        metric=metric,
        holdout=0.74,
        expected_worst=0.65,
        tolerance=0.02,
        quantile=0.01,
        history_days=28,
        window_days=7,
    )
    return Expectation(**{**base, **kw})


def history(shortfalls: list[float], *, last: dt.date, holdout: float = 0.70) -> list[JudgedDay]:
    days = [last - dt.timedelta(days=i) for i in range(len(shortfalls))][::-1]
    return [JudgedDay(d, holdout - s, holdout) for d, s in zip(days, shortfalls, strict=True)]


def test_without_history_the_bound_is_the_holdout_bootstrap_minus_the_tolerance() -> None:
    bound, used = degradation_bound(expectation(), [], DAY)
    assert bound == pytest.approx(0.63)
    assert used == 0


def test_history_widens_the_margin_to_how_far_earlier_windows_fell() -> None:
    # Earlier champions' windows fell up to 0.14 below their holdout metric on ordinary days.
    past = history([0.14] * 3 + [0.05] * 57, last=DAY - dt.timedelta(days=7))
    bound, used = degradation_bound(expectation(), past, DAY)
    assert used == 60
    # 0.74 minus the 99% shortfall, looser than the bootstrap's 0.63.
    assert bound == pytest.approx(0.60)


def test_a_tight_history_never_tightens_below_the_bootstrap() -> None:
    past = history([0.0] * 60, last=DAY - dt.timedelta(days=7))
    bound, _ = degradation_bound(expectation(), past, DAY)
    assert bound == pytest.approx(0.63)


def test_days_inside_the_judged_window_do_not_widen_their_own_margin() -> None:
    # A bad episode right before the day: its windows overlap the day's, so they are not history.
    ordinary = history([0.05] * 40, last=DAY - dt.timedelta(days=10))
    episode = history([0.3] * 6, last=DAY - dt.timedelta(days=1))
    bound, used = degradation_bound(expectation(), ordinary + episode, DAY)
    assert used == 40
    assert bound == pytest.approx(0.63)


def test_history_below_the_minimum_is_not_used() -> None:
    past = history([0.2] * 27, last=DAY - dt.timedelta(days=7))
    assert degradation_bound(expectation(), past, DAY) == (pytest.approx(0.63), 27)


def test_loss_metrics_bound_from_above() -> None:
    e = expectation("rmse", holdout=10.0, expected_worst=11.0, tolerance=0.5)
    assert degradation_bound(e, [], DAY)[0] == pytest.approx(11.5)
    past = [JudgedDay(DAY - dt.timedelta(days=8 + i), 14.0, 10.0) for i in range(30)]
    # Earlier windows ran 4 above their holdout RMSE: the bound is the looser 14.
    assert degradation_bound(e, past, DAY)[0] == pytest.approx(14.0)
