"""`modq ab promote`: move production to an A/B variant, only on a "ship" verdict."""

from __future__ import annotations

import click

from cli.ab_cmds import _experiments
from cli.registry_cmds import _history, _registry


def promote_variant(
    experiment_id: str, variant_name: str, alias: str, reason: str, actor: str | None, force: bool
) -> None:
    """Analyse the experiment; promote ``variant_name`` if its verdict is "ship", or if
    ``force`` with a ``reason`` (recorded on the experiment and in the alias history)."""
    from db.session import make_engine
    from experiments.dataset import analyze_experiment
    from lifecycle import current_actor, promote
    from lifecycle.promotion import ab_promotion_reason
    from modq.settings import get_settings
    from registry import parse_model_uri

    experiments = _experiments()
    experiment = experiments.get(experiment_id)
    variant = experiment.variant(variant_name)
    engine = make_engine(get_settings().database_url)
    try:
        analysis = analyze_experiment(engine, experiment_id)
    finally:
        engine.dispose()
    names = {v.challenger: v for v in analysis.challengers}
    judged = names.get(variant_name)
    verdict = str(judged.verdict) if judged else "no verdict"
    why = judged.reason if judged else "the control is what challengers are judged against"
    history_reason = ab_promotion_reason(
        experiment_id, variant_name, verdict, why, force=force, reason=reason
    )
    registry = _registry()
    target = registry.resolve(parse_model_uri(variant.model_uri))
    if registry.aliases(target.name).get(alias) == target.version:
        click.echo(f"{target.name}@{alias} already points at v{target.version}")
    else:
        move = promote(
            registry,
            _history(),
            target.name,
            target.version,
            alias=alias,
            actor=actor,
            reason=history_reason,
        )
        click.echo(f"{move.model_name}@{move.alias}: v{move.from_version} → v{move.to_version}")
    if verdict != "ship":  # recorded once the alias has moved
        who = actor or current_actor()
        experiments.record_forced_promotion(experiment_id, f"{who}: {history_reason}")
        click.echo(f"FORCED: {variant_name} has no ship verdict ({verdict}); recorded")
    if experiment.state.value != "stopped":
        experiments.stop(experiment_id, f"promoted {variant_name} (v{target.version})")
        click.echo(f"stopped {experiment_id}")
