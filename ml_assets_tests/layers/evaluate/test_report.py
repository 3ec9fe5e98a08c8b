"""Plots are real, small PNGs; the report links them and the inline snippet embeds them."""

import base64
import json
import re
import struct
from pathlib import Path

import numpy as np
import pytest

from ml_assets.core.spec import EvaluationSection
from ml_assets.layers.evaluate.compare import compare
from ml_assets.layers.evaluate.explain import global_importance
from ml_assets.layers.evaluate.gates import gate_results
from ml_assets.layers.evaluate.logic import evaluate_candidate
from ml_assets.layers.evaluate.metrics import evaluate_predictions
from ml_assets.layers.evaluate.plots import render_plots
from ml_assets.layers.evaluate.record import EvaluationRecord
from ml_assets.layers.evaluate.report import inline_markdown, render_report
from ml_assets.layers.evaluate.slices import slice_metrics
from ml_assets_tests.layers.evaluate.synthetic import (
    CATEGORICAL,
    FEATURES,
    NUMERIC,
    binary_frame,
    constant_baselines,
    fit_linear,
    scores,
    skill_of,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == PNG_SIGNATURE and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def test_binary_plots_report_and_inline_markdown(tmp_path: Path) -> None:
    frame = binary_frame(3_000, seed=4)
    model = fit_linear(frame, NUMERIC, CATEGORICAL)
    y, s = frame["y"].to_numpy(), scores(model, frame)
    metrics = evaluate_predictions(y, s, "binary")
    slices = slice_metrics(frame, ["segment", "c"], y, s, "binary", "roc_auc", 200)
    importance = global_importance(model, "linear", frame[FEATURES])
    section = EvaluationSection(floor=0.6)
    comparison = compare(metrics, None, "roc_auc", 0.01)
    skill = skill_of(metrics, frame["y"].to_numpy(), y)
    gates = gate_results(metrics, comparison, slices, skill, section)

    plots = render_plots(tmp_path / "plots", y, s, "binary", importance, slices)
    assert list(plots) == [
        "ROC curve",
        "Reliability",
        "Feature importance",
        "roc_auc by segment",
        "roc_auc by c",
    ]
    for path in plots.values():
        data = path.read_bytes()
        width, height = png_size(data)
        assert width == 400 and height >= 280  # 5 in x 80 dpi; tall charts grow with bars
        assert len(data) < 60_000

    report = render_report(
        tmp_path,
        "flights candidate v3",
        metrics,
        comparison,
        slices,
        importance,
        gates,
        plots,
        skill,
    )
    text = report.read_text()
    for heading in (
        "# flights candidate v3",
        "## Gates",
        "## Metrics",
        "## Naive baselines",
        "## Slices",
        "## Plots",
    ):
        assert heading in text
    assert f"| log_loss | {metrics['log_loss']:.4f} | " in text
    assert "F1 at 0.5" in text and "| baseline_skill | pass | blocking |" in text
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert links == [
        "plots/roc.png",
        "plots/calibration.png",
        "plots/importance.png",
        "plots/slices_segment.png",
        "plots/slices_c.png",
    ]
    assert all((tmp_path / link).is_file() for link in links)
    assert "small_slices" not in text and "not judged: segment=tiny" in text

    inline = inline_markdown(plots)
    uris = re.findall(r"data:image/png;base64,([A-Za-z0-9+/=]+)\)", inline)
    assert len(uris) == len(plots)
    assert base64.b64decode(uris[0]) == plots["ROC curve"].read_bytes()


def test_regression_plots(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    t = rng.normal(size=5_000)
    plots = render_plots(tmp_path, t, t + rng.normal(0, 0.3, 5_000), "regression")
    assert list(plots) == ["Predicted vs actual"]
    assert png_size(plots["Predicted vs actual"].read_bytes()) == (400, 280)


def test_evaluate_candidate_bundles_everything_and_round_trips_as_json(tmp_path: Path) -> None:
    train, test = binary_frame(4_000, seed=8), binary_frame(2_000, seed=9)
    candidate = fit_linear(train, NUMERIC, CATEGORICAL)
    champion = fit_linear(train, ["a"], [])
    y = test["y"].to_numpy()
    section = EvaluationSection(floor=0.7, min_slice_rows=100)
    ev = evaluate_candidate(
        section,
        "binary",
        test,
        y,
        scores(candidate, test),
        ["segment"],
        global_importance(candidate, "linear", test[FEATURES]),
        baselines=constant_baselines("binary", train["y"].to_numpy()),
        weekdays=np.ones(len(test)),
        threshold=0.5,
        champion_scores=scores(champion, test),
        champion_version="1",
        folder=tmp_path / "eval",
    )
    assert ev.champion_metrics["roc_auc"] < ev.metrics["roc_auc"]
    assert ev.comparison.delta == pytest.approx(
        ev.metrics["roc_auc"] - ev.champion_metrics["roc_auc"]
    )
    assert ev.verdict.promote and ev.gate("non_inferiority").passed
    assert list(ev.importance)[:2] in (["a", "c"], ["c", "a"]) and "Feature importance" in ev.plots
    assert ev.report == tmp_path / "eval" / "report.md" and ev.report.is_file()
    assert all(p.parent == tmp_path / "eval" / "plots" for p in ev.plots.values())
    # The record kept in MLflow for later cards: strict JSON, and back to the same values.
    text = json.dumps(ev.record().to_json(), allow_nan=False)
    again = EvaluationRecord.from_json(json.loads(text))
    assert again.gates == ev.gates and again.metrics.values == ev.metrics.values
    assert again.baselines == ev.baselines and ev.baselines.gate_skill.skill > 0
    assert again.slices.records() == ev.slices.records() and again.importance == ev.importance
    assert again.to_json() == ev.record().to_json()
    with pytest.raises(ValueError, match="both champion_scores and champion_version"):
        evaluate_candidate(
            section,
            "binary",
            test,
            y,
            y * 0.5,
            ["segment"],
            {},
            baselines=constant_baselines("binary", y),
            weekdays=np.ones(len(y)),
            threshold=0.5,
            champion_version="1",
        )
