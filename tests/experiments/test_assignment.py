"""Assignment is sticky, deterministic across processes, and splits traffic by the weights."""

import subprocess
import sys

import pytest
from scipy.stats import chisquare

from experiments.assignment import BUCKETS, assign, bucket_of, unit_of
from modq.experiment import AssignmentUnit, Experiment, Variant


def _experiment(weights: tuple[float, ...], experiment_id: str = "split") -> Experiment:
    return Experiment(
        id=experiment_id,
        variants=tuple(
            Variant(f"v{i}", f"models:/m/{i + 1}", "v1", w) for i, w in enumerate(weights)
        ),
        unit=AssignmentUnit.USER_ID,
    )


@pytest.mark.parametrize("weights", [(0.5, 0.5), (0.9, 0.1), (0.2, 0.3, 0.5)])
def test_the_split_matches_the_weights(weights: tuple[float, ...]) -> None:
    experiment = _experiment(weights)
    units = [f"user:{i}" for i in range(40_000)]
    counts = {v.name: 0 for v in experiment.live_variants}
    for unit in units:
        counts[assign(experiment, unit).name] += 1
    expected = [w * len(units) for w in weights]
    # a correct hash passes a goodness-of-fit test comfortably; a biased split does not
    assert chisquare(list(counts.values()), expected).pvalue > 0.001


def test_the_same_unit_always_gets_the_same_variant_in_any_process() -> None:
    experiment = _experiment((0.5, 0.5))
    here = [assign(experiment, f"user:{i}").name for i in range(200)]
    code = (
        "from experiments.assignment import assign\n"
        "from modq.experiment import Experiment, Variant, AssignmentUnit\n"
        "e = Experiment(id='split', variants=(Variant('v0','models:/m/1','v1',0.5),"
        "Variant('v1','models:/m/2','v1',0.5)), unit=AssignmentUnit.USER_ID)\n"
        "print(','.join(assign(e, f'user:{i}').name for i in range(200)))\n"
    )
    other = subprocess.run(  # another interpreter, another hash seed
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONHASHSEED": "12345", "PATH": ""},
    ).stdout.strip()
    assert other.split(",") == here
    assert here == [assign(experiment, f"user:{i}").name for i in range(200)]


def test_experiments_salt_the_hash_so_assignments_are_independent() -> None:
    a, b = _experiment((0.5, 0.5), "exp-a"), _experiment((0.5, 0.5), "exp-b")
    same = sum(assign(a, f"user:{i}").name == assign(b, f"user:{i}").name for i in range(10_000))
    assert 4_700 < same < 5_300  # about half agree, as for independent coins


def test_buckets_cover_the_range_and_units_fall_back_to_content() -> None:
    buckets = {bucket_of("e", f"u{i}") for i in range(50_000)}
    assert min(buckets) == 0 and max(buckets) == BUCKETS - 1
    experiment = _experiment((0.5, 0.5))
    assert unit_of(experiment, "c-1", "alice") == "user:alice"
    assert unit_of(experiment, "c-1", None) == "content:c-1"
