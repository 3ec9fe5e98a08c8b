"""The model card: what a model is for, what data made it, how good it is, and why it serves.

Everything in it is derived from the artefacts the graph already holds (spec, ModelRef, metrics,
slices, gates, audit rows, MLflow links), so the card cannot drift from what actually happened.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ml_assets.core.model import ModelRef
from ml_assets.core.spec import DatasetSpec
from ml_assets.layers.evaluate.baseline import BaselineReport
from ml_assets.layers.evaluate.gates import GateResult
from ml_assets.layers.evaluate.metrics import Metrics
from ml_assets.layers.evaluate.report import (
    fmt,
    gates_table,
    markdown_table,
    skill_table,
    slices_table,
    threshold_words,
)
from ml_assets.layers.evaluate.slices import SliceReport
from ml_assets.layers.promote.audit import Decision
from ml_assets.resources.mlflow_tracking import MlflowTracking

SECTIONS = (
    "Intended use",
    "Data",
    "Data contract",
    "Metrics",
    "Naive baselines",
    "Metrics per slice",
    "Top features",
    "Known limitations",
    "Checks",
    "Decision",
    "Links",
)


@dataclass(frozen=True)
class ModelLinks:
    run_url: str
    model_url: str
    experiment_id: str


def model_links(tracking: MlflowTracking, ref: ModelRef) -> ModelLinks:
    """MLflow UI links for the run that trained `ref` and its registered version."""
    experiment_id = tracking.client().get_run(ref.run_id).info.experiment_id
    return ModelLinks(
        run_url=tracking.run_url(experiment_id, ref.run_id),
        model_url=tracking.model_url(ref.registered_name, ref.version),
        experiment_id=experiment_id,
    )


def _contract(spec: DatasetSpec) -> str:
    rows = []
    for name, col in spec.contract.columns.items():
        bounds = (
            ""
            if col.min is None and col.max is None
            else f"[{'-inf' if col.min is None else f'{col.min:g}'}, "
            f"{'inf' if col.max is None else f'{col.max:g}'}]"
        )
        rows.append(
            (
                name,
                col.type,
                "yes" if col.nullable else "no",
                bounds,
                ", ".join(str(v) for v in col.allowed) if col.allowed else "",
            )
        )
    return markdown_table(["column", "type", "nullable", "range", "allowed"], rows)


def _limitations(
    spec: DatasetSpec,
    metrics: Metrics,
    slices: SliceReport,
    gates: Sequence[GateResult],
    label_exclusions: int | None,
) -> list[str]:
    out = []
    if slices.small:
        listed = ", ".join(f"{s.column}={s.value} ({s.rows} rows)" for s in slices.small[:10])
        out.append(
            f"{len(slices.small)} slices have fewer than {slices.min_rows} evaluation rows; their "
            f"metrics are noisy and excluded from the slice gap: {listed}"
            + (" ..." if len(slices.small) > 10 else "")
        )
    undefined = [s for s in slices.slices if s.rows >= slices.min_rows and math.isnan(s.metric)]
    if undefined:
        out.append(
            "Slices where the metric is undefined: "
            + ", ".join(f"{s.column}={s.value} ({s.note})" for s in undefined)
        )
    for g in gates:
        if g.name == "calibration" and not g.passed:
            out.append(
                f"Probabilities are not well calibrated on the holdout ({g.detail}; expected "
                f"{g.expected}): use scores to rank, not as probabilities, until a retrain "
                "recalibrates on later labels."
            )
    if label_exclusions is not None:
        out.append(
            f"{label_exclusions} rows had no label (NULL `{spec.label.sql}`) and were excluded "
            "from training and evaluation; the model says nothing about them."
        )
    out += [f"Metric flag: {f}" for f in metrics.flags]
    return out or ["None recorded."]


def render_model_card(
    spec: DatasetSpec,
    ref: ModelRef,
    metrics: Metrics,
    slices: SliceReport,
    importance: Mapping[str, float],
    gates: Sequence[GateResult],
    decision: Decision,
    links: ModelLinks,
    evaluation_window: tuple[str, str] | None = None,
    label_exclusions: int | None = None,
    history: Sequence[Decision] = (),
    top_features: int = 10,
    baselines: BaselineReport | None = None,
    calibration: str = "none",
) -> str:
    """The card as Markdown, with exactly the headings in SECTIONS (as `## ` sections).

    `baselines` is None for a version evaluated before skill scores were recorded."""
    data = [
        f"- Dataset: `{spec.name}` — {spec.description.strip() or 'no description'}",
        f"- Training window (daily partitions): {ref.train_window[0]} to {ref.train_window[1]}",
    ]
    if evaluation_window:
        data.append(f"- Evaluation window: {evaluation_window[0]} to {evaluation_window[1]}")
    data += [
        f"- Data version (hash of the training rows): `{ref.data_version}`",
        f"- Label: {spec.label.kind}, `{spec.label.sql}`, known {spec.label.delay_days} day(s) "
        "after the event",
        f"- Features ({len(ref.features)}): "
        + ", ".join(
            f"`{f}`{' (categorical)' if f in ref.categorical else ''}" for f in ref.features
        ),
    ]
    metric_rows = [(name, value) for name, value in metrics.values.items()]
    top = list(importance.items())[:top_features]
    decided = (
        f"**{decision.decision}** at {decision.decided_at.isoformat()} "
        f"(trigger: {decision.trigger}; Dagster run `{decision.dagster_run_id}`; "
        f"code version `{decision.code_version}`)\n\n"
        f"Champion before: {decision.previous_champion_version or 'none'}; after: "
        f"{decision.new_champion_version or 'none'}.\n\nReason: {decision.reason}"
    )
    parts = [
        f"# Model card: {ref.registered_name} v{ref.version}",
        f"{ref.family} model for a {ref.task} task on `{spec.name}`.",
        "## Intended use",
        spec.intended_use.strip() or "Not stated in the dataset spec.",
        "## Data",
        "\n".join(data),
        "## Data contract",
        f"Unique key: {', '.join(spec.contract.unique_key)}.\n\n{_contract(spec)}",
        "## Metrics",
        f"{metrics.rows} evaluation rows, label mean {fmt(metrics.label_mean)}"
        + threshold_words(metrics)
        + ("." if metrics.task != "binary" else f". Calibration: {calibration}."),
        markdown_table(["metric", "value"], metric_rows),
        "## Naive baselines",
        (
            "Skill = 1 - model error / baseline error on the evaluation rows (> 0: better than "
            "the baseline; the gated one must be).\n\n" + skill_table(baselines)
        )
        if baselines is not None
        else "Not recorded for this version (evaluated before skill scores were).",
        "## Metrics per slice",
        f"Primary metric {slices.metric}; worst-slice gap {fmt(slices.gap)}"
        + (
            f" ({slices.worst.column}={slices.worst.value})."
            if slices.worst
            else " (no eligible slice)."
        ),
        slices_table(slices) if slices.slices else "No slice columns in the spec.",
        "## Top features",
        markdown_table(["feature", "importance"], top) if top else "Not computed.",
        "## Known limitations",
        "\n".join(f"- {x}" for x in _limitations(spec, metrics, slices, gates, label_exclusions)),
        "## Checks",
        gates_table(gates),
    ]
    if history:
        parts.append(
            "Decision history:\n\n"
            + markdown_table(
                ["decided at", "decision", "candidate", "champion before", "after", "trigger"],
                [
                    (
                        d.decided_at.isoformat(),
                        d.decision,
                        d.candidate_version,
                        d.previous_champion_version,
                        d.new_champion_version,
                        d.trigger,
                    )
                    for d in history
                ],
            )
        )
    parts += [
        "## Decision",
        decided,
        "## Links",
        f"- MLflow run: [{ref.run_id}]({links.run_url})\n"
        f"- Registered model: [{ref.registered_name} v{ref.version}]({links.model_url})\n"
        f"- Model URI: `{ref.uri}`",
    ]
    return "\n\n".join(parts) + "\n"
