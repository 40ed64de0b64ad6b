"""Experiment definitions are validated before they reach SQL or a worker."""

import pytest

from modq.errors import ExperimentError
from modq.experiment import Experiment, Variant

PROD = "models:/modq-text@production"
V2 = "models:/modq-text/2"


def _experiment(*variants: Variant, **fields: object) -> Experiment:
    return Experiment(id=str(fields.pop("id", "exp-1")), variants=variants, **fields)  # type: ignore[arg-type]


def test_a_valid_experiment_knows_its_control_live_and_shadow_variants() -> None:
    experiment = _experiment(
        Variant("control", PROD, "v1", 0.7),
        Variant("challenger", V2, "v1", 0.3),
        Variant("quiet", V2, "v1", shadow=True),
    )
    assert experiment.control.name == "control"
    assert [v.name for v in experiment.live_variants] == ["control", "challenger"]
    assert [v.name for v in experiment.shadow_variants] == ["quiet"]
    assert experiment.variant("quiet").shadow


@pytest.mark.parametrize(
    ("variants", "message"),
    [
        ((Variant("a", PROD, "v1", 0.5), Variant("b", V2, "v1", 0.4)), "sum to 1"),
        ((Variant("a", PROD, "v1", 0.6), Variant("b", V2, "v1", 0.6)), "sum to 1"),
        ((Variant("a", PROD, "v1", 1.0),), "at least two"),
        ((Variant("a", PROD, "v1", 0.5), Variant("a", V2, "v1", 0.5)), "repeat"),
        ((Variant("a", PROD, "v1", 1.0), Variant("b", V2, "v1", 0.5, shadow=True)), "shadow"),
        ((Variant("a", PROD, "v1", 1.0), Variant("b", V2, "v1", 0.0)), "weight 0"),
        ((Variant("a", "/tmp/model", "v1", 0.5), Variant("b", V2, "v1", 0.5)), "registry URI"),
        ((Variant("A B", PROD, "v1", 0.5), Variant("b", V2, "v1", 0.5)), "variant name"),
        ((Variant("a", PROD, " ", 0.5), Variant("b", V2, "v1", 0.5)), "policy"),
        ((Variant("a", PROD, "v1", shadow=True), Variant("b", V2, "v1", shadow=True)), "live"),
    ],
)
def test_bad_definitions_are_refused_with_a_clear_error(
    variants: tuple[Variant, ...], message: str
) -> None:
    with pytest.raises(ExperimentError, match=message):
        _experiment(*variants)


def test_bad_ids_alpha_and_plan_are_refused() -> None:
    pair = (Variant("a", PROD, "v1", 0.5), Variant("b", V2, "v1", 0.5))
    with pytest.raises(ExperimentError, match="experiment id"):
        _experiment(*pair, id="Has Spaces")
    with pytest.raises(ExperimentError, match="alpha"):
        _experiment(*pair, alpha=1.5)
    with pytest.raises(ExperimentError, match="planned sample size"):
        _experiment(*pair, planned_sample_size=0)


def test_an_unknown_variant_name_lists_the_known_ones() -> None:
    experiment = _experiment(Variant("a", PROD, "v1", 0.5), Variant("b", V2, "v1", 0.5))
    with pytest.raises(ExperimentError, match="has: a, b"):
        experiment.variant("c")
