"""Moves of the `champion` alias in the MLflow model registry, and the tags that explain them.

Scoring loads `models:/<name>@champion`, so this alias is the one thing that decides what serves.
It moves only through `promote` (gates passed) or `rollback` (an explicit, reasoned request).
Rejected versions stay registered, tagged with why, so a rejection can be inspected later.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal

from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException

from ml_assets.core.faults import fault_point
from ml_assets.core.predictor import CHAMPION, current_champion
from ml_assets.layers.evaluate.gates import Verdict
from ml_assets.resources.mlflow_tracking import MlflowTracking

# MLflow caps model version tag values at 5000 characters.
MAX_TAG = 5000


class PromotionRefused(RuntimeError):
    """The registry was asked for a move its rules do not allow."""


@dataclass(frozen=True)
class RegistryChange:
    name: str
    action: Literal["promoted", "rejected", "rollback"]
    candidate_version: str | None  # promoted/rejected version, or the rollback target
    previous_champion: str | None
    new_champion: str | None
    at: dt.datetime


def _now(at: dt.datetime | None) -> dt.datetime:
    return at or dt.datetime.now(dt.UTC)


def _tag(client: MlflowClient, name: str, version: str, key: str, value: str) -> None:
    client.set_model_version_tag(name, version, key, value[:MAX_TAG])


def _version(client: MlflowClient, name: str, version: str) -> ModelVersion:
    try:
        return client.get_model_version(name, str(version))
    except MlflowException as exc:
        if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
            raise PromotionRefused(f"model {name!r} has no version {version!r}") from None
        raise


def promote(
    tracking: MlflowTracking,
    name: str,
    candidate_version: str,
    decision: Verdict,
    at: dt.datetime | None = None,
) -> RegistryChange:
    """Point `champion` at the candidate, only if the gates' verdict allows it.

    Tags: the candidate gets `promoted_at` and `previous_champion`; the version it replaces gets
    `superseded_by`. Promoting the current champion again changes nothing but `promoted_at`.
    """
    if not decision.promote:
        raise PromotionRefused(f"{name} v{candidate_version} not promoted: {decision.reason}")
    client = tracking.client()
    candidate = str(candidate_version)
    version = _version(client, name, candidate)
    at = _now(at)
    previous = current_champion(tracking, name)
    _tag(client, name, candidate, "promoted_at", at.isoformat())
    _tag(client, name, candidate, "promotion_reason", decision.reason)
    if previous != candidate:
        _tag(client, name, candidate, "previous_champion", previous or "")
    # A version rejected earlier can pass later (e.g. against a weaker champion); its rejection
    # stays in the audit table, the registry shows its current standing.
    for key in ("rejected", "rejection_reason", "rejected_at"):
        if key in version.tags:
            client.delete_model_version_tag(name, candidate, key)
    client.set_registered_model_alias(name, CHAMPION, candidate)
    fault_point("promotion.alias_moved")
    if previous is not None and previous != candidate:
        mark_superseded(tracking, name, previous, candidate, at)
    return RegistryChange(name, "promoted", candidate, previous, candidate, at)


def mark_superseded(
    tracking: MlflowTracking, name: str, previous: str, candidate: str, at: dt.datetime
) -> None:
    """Tag the version a promotion replaced with its successor (idempotent)."""
    client = tracking.client()
    _tag(client, name, previous, "superseded_by", candidate)
    _tag(client, name, previous, "superseded_at", at.isoformat())


def version_tags(tracking: MlflowTracking, name: str, version: str) -> dict[str, str]:
    return dict(_version(tracking.client(), name, str(version)).tags)


def reject(
    tracking: MlflowTracking,
    name: str,
    candidate_version: str,
    reason: str,
    at: dt.datetime | None = None,
) -> RegistryChange:
    """Tag the candidate `rejected=true` with the reason; the `champion` alias does not move."""
    if not reason.strip():
        raise ValueError("a rejection needs a reason")
    client = tracking.client()
    candidate = str(candidate_version)
    _version(client, name, candidate)
    at = _now(at)
    champion = current_champion(tracking, name)
    if champion == candidate:
        raise PromotionRefused(
            f"{name} v{candidate} is the champion; use rollback to replace it, not reject"
        )
    _tag(client, name, candidate, "rejected", "true")
    _tag(client, name, candidate, "rejection_reason", reason)
    _tag(client, name, candidate, "rejected_at", at.isoformat())
    return RegistryChange(name, "rejected", candidate, champion, champion, at)


def rollback_target(tracking: MlflowTracking, name: str, to_version: str | None) -> tuple[str, str]:
    """(current champion, version a rollback would restore), or PromotionRefused if none."""
    client = tracking.client()
    current = current_champion(tracking, name)
    if current is None:
        raise PromotionRefused(f"{name} has no champion to roll back from")
    if to_version is None:
        target = _version(client, name, current).tags.get("previous_champion", "")
        if not target:
            raise PromotionRefused(f"{name} v{current} has no previous champion to roll back to")
    else:
        target = str(to_version)
    if target == current:
        raise PromotionRefused(f"{name} v{target} is already the champion")
    if _version(client, name, target).tags.get("rejected") == "true":
        raise PromotionRefused(f"{name} v{target} was rejected; it cannot become champion")
    return current, target


def rollback(
    tracking: MlflowTracking,
    name: str,
    to_version: str | None,
    reason: str,
    at: dt.datetime | None = None,
) -> RegistryChange:
    """Point `champion` back at `to_version`, or at the version the champion replaced.

    The replaced champion's `previous_champion` tag says where to go; rolling back again walks
    further back. A rejected version is never a rollback target.
    """
    if not reason.strip():
        raise ValueError("a rollback needs a reason")
    current, target = rollback_target(tracking, name, to_version)
    client = tracking.client()
    at = _now(at)
    client.set_registered_model_alias(name, CHAMPION, target)
    _tag(client, name, current, "rolled_back_at", at.isoformat())
    _tag(client, name, current, "rollback_reason", reason)
    _tag(client, name, target, "restored_at", at.isoformat())
    return RegistryChange(name, "rollback", target, current, target, at)
