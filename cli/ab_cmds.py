"""`modq ab create|start|stop|show|list|audit-sample|report|promote`: A/B experiments from
the shell."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from cli import ab_rule
from cli.registry_cmds import _clear_errors, _registry
from modq.errors import ExperimentError, ModerationError

if TYPE_CHECKING:
    from db.experiments import ExperimentRepository
    from modq.experiment import Experiment


@click.group()
def ab() -> None:
    """A/B experiments: variants are registry versions or aliases under a policy version."""


def _experiments() -> ExperimentRepository:
    from db.experiments import ExperimentRepository
    from db.session import make_engine
    from modq.settings import get_settings

    return ExperimentRepository(make_engine(get_settings().database_url))


def _notify_workers() -> None:
    """Workers re-read the running experiment now (they also re-read it on their own)."""
    from tasks.control import broadcast_experiment_refresh

    try:
        replies = broadcast_experiment_refresh()
    except ModerationError as exc:
        click.echo(f"workers not notified ({exc.message}); they re-read it within seconds")
        return
    click.echo(f"notified {len(replies)} worker(s)")


def _check_resolvable(experiment: Experiment) -> None:
    """Every variant's model must resolve in the registry and its policy version exist."""
    from modq.settings import get_settings
    from policy import load_policy_version
    from registry import parse_model_uri

    registry = _registry()
    folder = Path(get_settings().policy_path).parent
    for variant in experiment.variants:
        try:
            registry.resolve(parse_model_uri(variant.model_uri))
        except ModerationError as exc:
            raise ExperimentError(f"variant {variant.name!r}: {exc.message}") from exc
        try:
            load_policy_version(variant.policy_version, folder)
        except ModerationError as exc:
            raise ExperimentError(f"variant {variant.name!r}: {exc.message}") from exc


@ab.command("create")
@click.argument("experiment_id")
@click.option(
    "--variant",
    "variants",
    multiple=True,
    required=True,
    help="NAME=models:/NAME@ALIAS|/VERSION, repeated; the first is the control.",
)
@click.option("--shadow", "shadows", multiple=True, help="NAME=MODEL_URI: a shadow variant.")
@click.option("--weight", "weights", multiple=True, help="NAME=SHARE of live traffic (sum 1).")
@click.option("--policy", "policies", multiple=True, help="NAME=POLICY_VERSION (default: ours).")
@click.option(
    "--unit",
    type=click.Choice(["content_id", "user_id"]),
    default="content_id",
    show_default=True,
    help="What sticks to one variant.",
)
@click.option(
    "--primary",
    default=None,
    help="The metric that decides (default violations_actioned_per_1k): "
    "violations_actioned_per_1k, false_actions_per_1k, precision, recall, action_rate, "
    "remove_rate, latency_ms, latency_p95_ms.",
)
@click.option(
    "--direction",
    type=click.Choice(["increase", "decrease"]),
    default=None,
    help="Which way the primary metric must move (needed for action/remove rate).",
)
@click.option(
    "--guardrail",
    "guardrails",
    multiple=True,
    help="METRIC=MARGIN[:increase|decrease], repeated: the metric may worsen by at most "
    "MARGIN (relative, 0.1 = 10%%). Default: precision=0.05, latency_p95_ms=0.25; "
    "'none' for none.",
)
@click.option(
    "--planned-sample-size",
    type=int,
    default=None,
    help="Units in the smallest live arm; the analysis freezes when every live arm has them.",
)
@click.option("--mde", type=float, default=None, help="Plan for this change in the primary metric.")
@click.option("--baseline", type=float, default=None, help="The control's expected primary metric.")
@click.option("--action-rate", type=float, default=None, help="Control's share flagged or removed.")
@click.option(
    "--challenger-action-rate", type=float, default=None, help="The challengers' (default: same)."
)
@click.option(
    "--review-share",
    type=float,
    default=1.0,
    show_default=True,
    help="With --mde: the share of actioned items that reviewers will label.",
)
@click.option("--max-posts", type=int, default=1, show_default=True, help="Posts per unit: 1..N.")
@click.option("--icc", type=float, default=0.0, show_default=True, help="Within-unit correlation.")
@click.option("--power", type=float, default=0.8, show_default=True)
@click.option("--alpha", type=float, default=0.05, show_default=True)
@click.option("--description", default="")
def ab_create(
    experiment_id: str,
    variants: tuple[str, ...],
    shadows: tuple[str, ...],
    weights: tuple[str, ...],
    policies: tuple[str, ...],
    unit: str,
    primary: str | None,
    direction: str | None,
    guardrails: tuple[str, ...],
    planned_sample_size: int | None,
    mde: float | None,
    baseline: float | None,
    action_rate: float | None,
    challenger_action_rate: float | None,
    review_share: float,
    max_posts: int,
    icc: float,
    power: float,
    alpha: float,
    description: str,
) -> None:
    """Create a draft experiment (checked: models resolve, policies exist, weights sum to 1,
    the decision rule names known metrics) and plan its size."""
    from cli.ab_rule import PlanOptions, decision_rule, planned_size
    from lifecycle import current_actor
    from modq.experiment import AssignmentUnit, Experiment, Variant
    from modq.settings import get_settings
    from policy import load_policy

    with _clear_errors():
        live = ab_rule.pairs(variants, "--variant")
        shadow = ab_rule.pairs(shadows, "--shadow")
        clash = sorted(set(live) & set(shadow))
        if clash:
            raise ExperimentError(f"variant names used twice: {', '.join(clash)}")
        shares = ab_rule.weights(weights, list(live))
        default_policy = load_policy(get_settings().policy_path).version
        policy_of = ab_rule.pairs(policies, "--policy")
        unknown = sorted(set(policy_of) - set(live) - set(shadow))
        if unknown:
            raise ExperimentError(f"--policy names no variant: {', '.join(unknown)}")
        rule = decision_rule(primary, direction, guardrails)
        options = PlanOptions(
            mde, baseline, action_rate, challenger_action_rate, review_share, max_posts, icc, power
        )
        planned_sample_size, how = planned_size(
            planned_sample_size, options, rule, list(shares.values()), alpha
        )
        experiment = Experiment(
            id=experiment_id,
            variants=tuple(
                [
                    Variant(n, u, policy_of.get(n, default_policy), shares[n])
                    for n, u in live.items()
                ]
                + [
                    Variant(n, u, policy_of.get(n, default_policy), 0.0, shadow=True)
                    for n, u in shadow.items()
                ]
            ),
            unit=AssignmentUnit(unit),
            description=description,
            planned_sample_size=planned_sample_size,
            alpha=alpha,
            created_by=current_actor(),
            decision_rule=rule,
        )
        _check_resolvable(experiment)
        _experiments().create(experiment)
    click.echo(f"created {experiment_id} (draft): {_summary(experiment)}")
    click.echo(f"decides on: {_rule_text(rule)}")
    if how:
        click.echo(how)


def _rule_text(rule: dict[str, Any]) -> str:
    from experiments.decision import DecisionRule

    return DecisionRule.from_dict(rule).describe()


def _summary(experiment: Experiment) -> str:
    parts = [
        f"{v.name}={v.model_uri} policy {v.policy_version} "
        + ("shadow" if v.shadow else f"{v.weight:.0%}")
        for v in experiment.variants
    ]
    return "; ".join(parts)


@ab.command("start")
@click.argument("experiment_id")
def ab_start(experiment_id: str) -> None:
    """Start routing live traffic by the experiment's weights (one experiment at a time)."""
    with _clear_errors():
        experiment = _experiments().get(experiment_id)
        _check_resolvable(experiment)  # the registry may have changed since create
        _experiments().start(experiment_id)
    click.echo(f"started {experiment_id}")
    _notify_workers()


@ab.command("stop")
@click.argument("experiment_id")
@click.option("--reason", default="", help="Why (kept with the experiment).")
def ab_stop(experiment_id: str, reason: str) -> None:
    """Stop routing: traffic goes back to the workers' own model."""
    with _clear_errors():
        _experiments().stop(experiment_id, reason)
    click.echo(f"stopped {experiment_id}")
    _notify_workers()


@ab.command("list")
def ab_list() -> None:
    """Every experiment, oldest first."""
    with _clear_errors():
        experiments = _experiments().all()
    for experiment in experiments:
        click.echo(f"{experiment.id}\t{experiment.state.value}\t{_summary(experiment)}")


@ab.command("show")
@click.argument("experiment_id")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def ab_show(experiment_id: str, as_json: bool) -> None:
    """An experiment's definition, state and assignment counts."""
    from db.assignments import AssignmentRepository
    from db.session import make_engine
    from modq.settings import get_settings

    with _clear_errors():
        experiment = _experiments().get(experiment_id)
        counts = AssignmentRepository(make_engine(get_settings().database_url)).counts(
            experiment_id
        )
    variants: list[dict[str, Any]] = [
        {
            "name": v.name,
            "model_uri": v.model_uri,
            "policy_version": v.policy_version,
            "weight": v.weight,
            "shadow": v.shadow,
            "assignments": counts.get(v.name, 0),
        }
        for v in experiment.variants
    ]
    data = {
        "id": experiment.id,
        "state": experiment.state.value,
        "unit": experiment.unit.value,
        "description": experiment.description,
        "planned_sample_size": experiment.planned_sample_size,
        "alpha": experiment.alpha,
        "created_by": experiment.created_by,
        "created_at": _iso(experiment.created_at),
        "started_at": _iso(experiment.started_at),
        "stopped_at": _iso(experiment.stopped_at),
        "stop_reason": experiment.stop_reason,
        "decision_rule": experiment.decision_rule,
        "forced_promotion": experiment.forced_promotion,
        "variants": variants,
    }
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    click.echo(f"{experiment.id} ({experiment.state.value}, by {experiment.unit.value})")
    if experiment.description:
        click.echo(f"  {experiment.description}")
    if experiment.decision_rule is not None:
        click.echo(f"  decides on: {_rule_text(dict(experiment.decision_rule))}")
    if experiment.forced_promotion:
        click.echo(f"  forced promotion: {experiment.forced_promotion}")
    for v in variants:
        share = "shadow" if v["shadow"] else f"{v['weight']:.0%}"
        click.echo(
            f"  {v['name']:<16} {share:>6}  {v['model_uri']}  policy {v['policy_version']}"
            f"  assignments {v['assignments']}"
        )


def _iso(moment: object) -> str | None:
    return None if moment is None else moment.isoformat()  # type: ignore[attr-defined]


@ab.command("promote")
@click.argument("experiment_id")
@click.argument("variant_name")
@click.option("--alias", default="production", show_default=True)
@click.option("--reason", default="", help="Why (recorded in the alias history).")
@click.option("--actor", default=None, help="Who (default MODQ_ACTOR or the login name).")
@click.option(
    "--force", is_flag=True, help="Promote without a ship verdict (needs --reason; recorded)."
)
def ab_promote(
    experiment_id: str,
    variant_name: str,
    alias: str,
    reason: str,
    actor: str | None,
    force: bool,
) -> None:
    """Point the production alias at the variant's model version and stop the experiment.
    Only a variant whose verdict is "ship" is promoted, unless --force --reason is given."""
    from cli.ab_promote import promote_variant

    with _clear_errors():
        promote_variant(experiment_id, variant_name, alias, reason, actor, force)
    from cli.registry_cmds import _notify_workers as _notify_model_watchers

    _notify_model_watchers()
    _notify_workers()


@ab.command("audit-sample")
@click.argument("experiment_id")
@click.option("--share", type=float, default=0.02, show_default=True)
def ab_audit_sample(experiment_id: str, share: float) -> None:
    """Print content_id,label for a random share of the content no arm actioned: send it to
    reviewers so recall is estimable without bias (import the filled file with `review import`)."""
    from db.assignments import AssignmentRepository
    from db.session import make_engine
    from experiments.audit import audit_sample
    from modq.settings import get_settings

    with _clear_errors():
        _experiments().get(experiment_id)
        engine = make_engine(get_settings().database_url)
        try:
            rows = AssignmentRepository(engine).for_experiment(experiment_id)
        finally:
            engine.dispose()
        allowed = {r.content_id for r in rows if r.decision == "allow"}
        chosen = audit_sample(experiment_id, allowed, share)
    click.echo("content_id,label")
    for content_id in chosen:
        click.echo(f"{content_id},")


@ab.command("report")
@click.argument("experiment_id")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder for the report, its plots and analysis.json (default var/reports/ID).",
)
@click.option("--format", "fmt", type=click.Choice(["md", "html"]), default="md", show_default=True)
@click.option("--quiet", is_flag=True, help="Only print where the report was written.")
def ab_report(experiment_id: str, out_dir: Path | None, fmt: str, quiet: bool) -> None:
    """The verdict (ship / don't ship / keep running / untrusted) with its reason; the primary
    metric and guardrails with intervals; review coverage; SRM; always-valid p; plots."""
    from db.session import make_engine
    from experiments.dataset import analyze_experiment
    from experiments.report import render_markdown, write_report
    from modq.settings import get_settings

    with _clear_errors():
        engine = make_engine(get_settings().database_url)
        try:
            analysis = analyze_experiment(engine, experiment_id)
        finally:
            engine.dispose()
        path = write_report(analysis, out_dir or Path("var/reports") / experiment_id, fmt=fmt)
    if not quiet:
        click.echo(render_markdown(analysis))
    click.echo(f"report written to {path}")
