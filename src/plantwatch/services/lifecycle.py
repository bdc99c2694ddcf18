"""Model lifecycle use cases: register a trained version as a candidate, promote one to production behind the
false-alarm gate, roll production back, list versions with their stages.

The gate. A candidate may replace production only when it does not raise more false alarms than production on
the same held-out normal data: both models score the normal validation windows kept with each of them (data
neither was fitted on when both were trained on the same file; each model's threshold was calibrated on its
own, so using both sets keeps the comparison from favouring either). Each window is an alarm or not for each
model, so the comparison is paired: the exact McNemar test asks whether the windows where only the candidate
alarms outnumber those where only production does by more than chance. A candidate whose features differ from
production's cannot be compared and is refused too. `force` promotes anyway, and the stage history records it.
"""

from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
from scipy.stats import binomtest

from plantwatch.domain.alarms import rule_of_card
from plantwatch.domain.errors import ModelUnavailableError, PromotionRefusedError
from plantwatch.domain.lifecycle import GateResult, ModelStages, Stage
from plantwatch.domain.modules import Module
from plantwatch.domain.ports import HeldOut, ModelCard, ModelRegistry, TrainedModel

# The McNemar p-value under which "the candidate alarms more often" is taken as real, not chance.
GATE_ALPHA = 0.05


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def pin_production(registry: ModelRegistry, module: Module, model_name: str) -> None:
    """Record the version a registry from before stages serves (its latest) as production, so a version
    saved next is not taken for the latest-served one, even for a moment."""
    stages = registry.stages(module, model_name)
    if stages.recorded or stages.production is None:
        return
    served = stages.production
    registry.change_stages(
        module, model_name, lambda current: current if current.recorded else current.adopt(served, _now())
    )


def register_candidate(
    registry: ModelRegistry, card: ModelCard, *, promote_first: bool = True
) -> ModelStages:
    """Record a version just saved as a candidate.

    The first version of a model becomes production at once when `promote_first` (there is nothing it could
    be worse than, and `plantwatch run` must serve something). When the registry holds older versions but no
    stage record (made before stages existed), the version it served until now, the previous latest, is
    pinned as production, so a new training never goes live by itself.
    """

    def settle(stages: ModelStages) -> ModelStages:
        if stages.recorded:
            return stages
        older = [v for v in stages.versions if v != card.version]
        if older:
            return stages.adopt(older[-1], _now())
        unpromoted = ModelStages(versions=stages.versions)
        if promote_first:
            return unpromoted.promote(card.version, _now(), note="first version of the model")
        return unpromoted

    return registry.change_stages(card.module, card.model_name, settle)


def _held_out_scores(model: TrainedModel, held_out: HeldOut) -> np.ndarray:
    """`model`'s alarm (True), no alarm (False) or no score (NaN) for each normal window of `held_out`."""
    columns = [held_out.feature_names.index(name) for name in model.card.feature_names]
    values = held_out.values[:, columns]
    scores = model.detector.score(values[held_out.history :], history=values[: held_out.history])
    finite = np.isfinite(scores)
    # the model's own alarm rule, as it serves: false alarms are what the operator would see
    alarms = rule_of_card(model.card).alarms(np.where(finite, scores, np.nan), model.card.threshold)
    return np.where(finite, alarms, np.nan)[held_out.normal]


def false_alarm_gate(
    candidate: TrainedModel, production: TrainedModel, alpha: float = GATE_ALPHA
) -> GateResult:
    """Compare false alarms of `candidate` and `production` on their held-out normal windows (module doc)."""
    if set(candidate.card.feature_names) != set(production.card.feature_names):
        missing = sorted(set(production.card.feature_names) - set(candidate.card.feature_names))
        extra = sorted(set(candidate.card.feature_names) - set(production.card.feature_names))
        return GateResult(
            passed=False,
            reason=f"features differ from production's (missing {missing}, extra {extra}): "
            "the two models cannot be compared on the same data",
        )
    held_out = [m.held_out for m in (candidate, production) if m.held_out is not None]
    if not held_out:
        return GateResult(passed=False, reason="neither model kept held-out normal data to compare them on")
    candidate_alarms = np.concatenate([_held_out_scores(candidate, h) for h in held_out])
    production_alarms = np.concatenate([_held_out_scores(production, h) for h in held_out])
    both = np.isfinite(candidate_alarms) & np.isfinite(production_alarms)
    ours, theirs = candidate_alarms[both] == 1, production_alarms[both] == 1
    windows = int(both.sum())
    if windows == 0:
        return GateResult(passed=False, reason="no held-out normal window has a score from both models")
    candidate_only = int(np.count_nonzero(ours & ~theirs))
    production_only = int(np.count_nonzero(theirs & ~ours))
    discordant = candidate_only + production_only
    p_value = binomtest(candidate_only, discordant, 0.5, alternative="greater").pvalue if discordant else 1.0
    candidate_rate, production_rate = float(ours.mean()), float(theirs.mean())
    worse = candidate_rate > production_rate and p_value < alpha
    verdict = "more" if worse else "not more"
    return GateResult(
        passed=not worse,
        reason=f"candidate false-alarm rate {candidate_rate:.4f} vs production {production_rate:.4f} on "
        f"{windows} held-out normal windows: {verdict} false alarms (McNemar p = {p_value:.3g})",
        windows=windows,
        candidate_false_alarm_rate=candidate_rate,
        production_false_alarm_rate=production_rate,
        candidate_only_alarms=candidate_only,
        production_only_alarms=production_only,
        p_value=float(p_value),
    )


@dataclass(frozen=True)
class PromotionResult:
    stages: ModelStages
    previous: str | None
    gate: GateResult | None
    """None when there was no production to compare with."""
    forced: bool


def promote_version(
    registry: ModelRegistry,
    module: Module,
    model_name: str,
    version: str,
    *,
    force: bool = False,
    alpha: float = GATE_ALPHA,
) -> PromotionResult:
    """Make `version` production if it passes the false-alarm gate against production (or `force`).

    Raises PromotionRefusedError (with the gate's figures) when refused, NotFoundError for an unknown version,
    ModelIntegrityError when either model fails its checksums.
    """
    stages = registry.stages(module, model_name)
    if version not in stages.versions:
        registry.load(module, model_name, version)  # raises NotFoundError naming the versions there are
    if stages.stage_of(version) is Stage.PRODUCTION:
        raise PromotionRefusedError(f"{module.value}/{model_name} {version} is already production")
    candidate = registry.load(module, model_name, version)
    gate = None
    if stages.production is not None:
        production = registry.load(module, model_name, stages.production)
        gate = false_alarm_gate(candidate, production, alpha)
        if not gate.passed and not force:
            raise PromotionRefusedError(
                f"{module.value}/{model_name} {version} not promoted over {stages.production}: "
                f"{gate.reason}; use --force to promote anyway"
            )
    expected = stages.production

    def promote(current: ModelStages) -> ModelStages:
        # the gate compared with `expected`: if someone promoted meanwhile, the comparison is stale
        if current.production != expected:
            raise PromotionRefusedError(
                f"production of {module.value}/{model_name} changed to {current.production} meanwhile; retry"
            )
        if not current.recorded and expected is not None:
            current = current.adopt(expected, _now())
        forced = gate is not None and not gate.passed
        return current.promote(version, _now(), forced=forced, note=gate.reason if gate else "")

    new_stages = registry.change_stages(module, model_name, promote)
    return PromotionResult(
        stages=new_stages, previous=expected, gate=gate, forced=gate is not None and not gate.passed
    )


def load_production(registry: ModelRegistry, module: Module, model_name: str) -> TrainedModel:
    """The production version of a model. NotFoundError when it has no version at all,
    ModelUnavailableError when none is production."""
    stages = registry.stages(module, model_name)
    if not stages.versions:
        registry.load(module, model_name)  # raises NotFoundError naming the model and the registry
    if stages.production is None:
        raise ModelUnavailableError(
            f"no {module.value}/{model_name} version is in production; promote one of "
            f"{list(stages.versions)} with `plantwatch models promote {module.value} VERSION`"
        )
    return registry.load(module, model_name, stages.production)


def rollback_production(registry: ModelRegistry, module: Module, model_name: str) -> ModelStages:
    """Production goes back to the version that served before it; the current one is archived."""
    return registry.change_stages(module, model_name, lambda stages: stages.rollback(_now()))


@dataclass(frozen=True)
class VersionView:
    card: ModelCard
    stage: Stage


def list_versions(
    registry: ModelRegistry, module: Module | None = None, model_name: str | None = None
) -> list[VersionView]:
    """Every registered version with its stage, by module, model name and version."""
    views: list[VersionView] = []
    stages_by_model: dict[tuple[Module, str], ModelStages] = {}
    for card in registry.list_cards(module):
        if model_name is not None and card.model_name != model_name:
            continue
        key = (card.module, card.model_name)
        if key not in stages_by_model:
            stages_by_model[key] = registry.stages(*key)
        views.append(VersionView(card=card, stage=stages_by_model[key].stage_of(card.version)))
    return views
