"""The model card carries every required section, filled from the real artefacts."""

import re

from ml_assets.layers.evaluate.compare import compare
from ml_assets.layers.evaluate.explain import global_importance
from ml_assets.layers.evaluate.gates import gate_results
from ml_assets.layers.evaluate.metrics import evaluate_predictions
from ml_assets.layers.evaluate.slices import slice_metrics
from ml_assets.layers.promote.audit import decisions
from ml_assets.layers.promote.card import SECTIONS, model_links, render_model_card
from ml_assets.layers.promote.decide import decide
from ml_assets_tests.layers.evaluate.synthetic import (
    CATEGORICAL,
    FEATURES,
    NUMERIC,
    binary_frame,
    fit_linear,
    scores,
    skill_of,
)
from ml_assets_tests.layers.promote.conftest import MODEL_NAME, register


def test_model_card_sections(tracking, warehouse, flights_spec) -> None:
    # A calibration limit no real model meets, so the card must carry the warning.
    section = flights_spec.evaluation.model_copy(update={"max_calibration_error": 0.001})
    assert section.max_calibration_error == 0.001 and section.floor == flights_spec.evaluation.floor
    train, test = binary_frame(4_000, seed=31), binary_frame(2_000, seed=32)
    model = fit_linear(train, NUMERIC, CATEGORICAL)
    ref = register(tracking, model, "linear", FEATURES, CATEGORICAL).ref
    y, s = test["y"].to_numpy(), scores(model, test)
    metrics = evaluate_predictions(y, s, "binary")
    slices = slice_metrics(test, ["segment", "c"], y, s, "binary", "roc_auc", 200)
    skill = skill_of(metrics, train["y"].to_numpy(), y)
    comparison = compare(metrics, None, "roc_auc", 0.01)
    gates = gate_results(metrics, comparison, slices, skill, section)
    decision = decide(
        tracking,
        warehouse,
        dataset="flights",
        model_name=MODEL_NAME,
        candidate_version=ref.version,
        gates=gates,
        metrics=metrics,
        trigger="initial",
        code_version="code-1",
        dagster_run_id="run-card",
    )
    links = model_links(tracking, ref)
    card = render_model_card(
        flights_spec,
        ref,
        metrics,
        slices,
        global_importance(model, "linear", test[FEATURES]),
        gates,
        decision,
        links,
        evaluation_window=("2013-04-01", "2013-04-14"),
        label_exclusions=123,
        history=decisions(warehouse, "flights"),
        baselines=skill,
        calibration="isotonic",
    )
    headings = re.findall(r"^## (.+)$", card, flags=re.M)
    assert headings == list(SECTIONS)
    assert "Rank scheduled departures" in card  # intended_use from flights.yaml
    assert "2013-01-01 to 2013-03-31" in card and "2013-04-01 to 2013-04-14" in card
    assert "`synthetic-v1`" in card  # data version
    assert "| carrier | VARCHAR | no |  | 9E, AA," in card  # contract with allowed values
    assert "| dep_delay | DOUBLE | yes | [-120, 1800] |" in card
    assert f"| roc_auc | {metrics['roc_auc']:.4f} |" in card
    assert "Calibration: isotonic." in card and "F1 at 0.5" in card
    log_loss = skill.skill("log_loss")
    assert (
        f"| log_loss | {log_loss.model:.4f} | {log_loss.baselines['training_rate']:.4f} | "
        f"training_rate | {log_loss.skill:.4f} | yes |" in card
    )
    assert "| segment | tiny | 25 |" in card
    limitations = card.split("## Known limitations")[1].split("## Checks")[0]
    assert "segment=tiny (25 rows)" in limitations
    assert "not well calibrated" in limitations and "123 rows had no label" in limitations
    assert (
        "| calibration | warn | warning |" in card and "| metric_floor | pass | blocking |" in card
    )
    assert f"**promoted** at {decision.decided_at.isoformat()}" in card
    assert links.run_url in card and links.model_url in card
    assert links.run_url.endswith(f"/experiments/{links.experiment_id}/runs/{ref.run_id}")
    assert f"models:/{MODEL_NAME}/{ref.version}" in card
