"""What a build records of the machine and packages its digest depends on."""

from training.environment import PACKAGES, build_environment


def test_the_build_environment_names_the_cpu_kernels_and_the_packages() -> None:
    recorded = build_environment()
    assert set(recorded["packages"]) == set(PACKAGES)
    assert recorded["packages"]["torch"].startswith("2.13.0")  # pinned: the build extra
    assert recorded["torch_cpu_capability"]  # e.g. AVX2, AVX512: kernels, so float sums
    assert recorded["torch_threads"] >= 1 and recorded["cpu"]
