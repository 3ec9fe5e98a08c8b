"""The evaluation report: Markdown beside its PNGs, and an inline variant for Dagster metadata.

The file report links the PNGs by relative path so the folder can be moved or served as is; the
inline variant embeds them as base64 data URIs, which `MetadataValue.md` renders in the UI without
any file server.
"""

from __future__ import annotations

import base64
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from ml_assets.layers.evaluate.baseline import BaselineReport
from ml_assets.layers.evaluate.compare import Comparison
from ml_assets.layers.evaluate.gates import GateResult
from ml_assets.layers.evaluate.metrics import Metrics
from ml_assets.layers.evaluate.slices import SliceReport

REPORT_NAME = "report.md"


def fmt(value: object, digits: int = 4) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return "NaN" if math.isnan(value) else f"{value:.{digits}f}"
    return str(value)


def markdown_table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    def cell(v: object) -> str:
        return fmt(v).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def metrics_table(metrics: Metrics, comparison: Comparison | None = None) -> str:
    deltas = comparison.deltas if comparison else {}
    rows = [(name, value, deltas.get(name)) for name, value in metrics.values.items()]
    return markdown_table(["metric", "candidate", "Δ vs champion"], rows)


def gates_table(gates: Sequence[GateResult]) -> str:
    rows = [
        (
            g.name,
            "pass" if g.passed else ("FAIL" if g.blocking else "warn"),
            "blocking" if g.blocking else "warning",
            g.observed,
            g.expected,
            g.detail,
        )
        for g in gates
    ]
    return markdown_table(["gate", "result", "kind", "observed", "expected", "detail"], rows)


def skill_table(baselines: BaselineReport) -> str:
    """One row per error metric: the model, each naive baseline, the best one and the skill."""
    names = list(dict.fromkeys(n for s in baselines.skills for n in s.baselines))
    rows = [
        (
            s.metric,
            s.model,
            *(s.baselines.get(n) for n in names),
            s.best,
            s.skill,
            "yes" if s.metric == baselines.gated else "",
        )
        for s in baselines.skills
    ]
    return markdown_table(["metric", "model", *names, "best baseline", "skill", "gated"], rows)


def threshold_words(metrics: Metrics) -> str:
    if metrics.threshold is None:
        return ""
    f1_half = metrics.values.get("f1_at_0.5")
    return (
        f", decision threshold {fmt(metrics.threshold)} (stored with the version): F1 "
        f"{fmt(metrics.values.get('f1'))}, precision {fmt(metrics.values.get('precision'))}, "
        f"recall {fmt(metrics.values.get('recall'))}; F1 at 0.5 {fmt(f1_half)}"
    )


def slices_table(slices: SliceReport) -> str:
    rows = [
        (s.column, s.value, s.rows, s.label_mean, s.metric, "yes" if s.eligible else s.note)
        for s in slices.slices
    ]
    return markdown_table(["column", "value", "rows", "label mean", slices.metric, "in gap"], rows)


def importance_table(importance: Mapping[str, float], top: int = 15) -> str:
    return markdown_table(["feature", "importance"], list(importance.items())[:top])


def render_report(
    folder: Path,
    title: str,
    metrics: Metrics,
    comparison: Comparison,
    slices: SliceReport,
    importance: Mapping[str, float],
    gates: Sequence[GateResult],
    plots: Mapping[str, Path],
    baselines: BaselineReport | None = None,
) -> Path:
    """Write `folder/report.md` linking the PNGs in `plots` (title -> path); returns its path."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    champion = (
        f"champion {comparison.metric} {fmt(comparison.champion)}; {comparison.detail}"
        if comparison.has_champion
        else comparison.detail
    )
    parts = [
        f"# {title}",
        f"{metrics.rows} rows, label mean {fmt(metrics.label_mean)}{threshold_words(metrics)}",
        "## Gates",
        gates_table(gates),
        "## Metrics",
        champion,
        metrics_table(metrics, comparison),
    ]
    if metrics.flags:
        parts += ["Flags: " + "; ".join(metrics.flags)]
    if baselines is not None:
        parts += [
            "## Naive baselines",
            "Skill = 1 - model error / baseline error on the same holdout rows (> 0: better "
            "than the baseline); baselines are fitted on the train split.",
            skill_table(baselines),
        ]
    parts += [
        "## Slices",
        f"Worst-slice gap {fmt(slices.gap)} (slices under {slices.min_rows} rows excluded).",
        slices_table(slices),
        "## Feature importance",
        importance_table(importance),
        "## Plots",
    ]
    for name, path in plots.items():
        rel = Path(os.path.relpath(Path(path).resolve(), folder.resolve())).as_posix()
        parts.append(f"### {name}\n![{name}]({rel})")
    out = folder / REPORT_NAME
    out.write_text("\n\n".join(parts) + "\n")
    return out


def data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode("ascii")


def inline_markdown(plots: Mapping[str, Path]) -> str:
    """The PNGs as inline images, for `dg.MetadataValue.md` (about 15-30 kB of text per plot)."""
    return "\n\n".join(f"**{name}**\n\n![{name}]({data_uri(path)})" for name, path in plots.items())
