"""`course check --fast` on every real section: the solution passes all public and hidden tests,
the stubs fail every graded test cleanly, and the FAST run still shows each headline result."""

from pathlib import Path

import pytest

from build_tools.check import check_section
from build_tools.validate import load_valid
from conftest import REPO

pytestmark = [pytest.mark.slow, pytest.mark.sections]
SECTIONS = sorted((REPO / "source_exercises").glob("[0-9][0-9]_*.py"))
# Sections whose full `course check --fast` (including the qualitative expectations below) has been
# seen to pass. The others are still being written: they run, and report, but do not fail the suite
# until they join this set (strict xfail would hide a fix, so it is not strict).
VERIFIED = {"01", "02", "03", "04", "05", "06", "07"}


def _expectations(number: int, r: dict) -> list[str]:
    """Qualitative results each section must show in FAST mode (COURSE_FACTS)."""
    failures = []

    def expect(condition, message):
        if not condition:
            failures.append(message)

    if number == 1:
        expect(r.get("pentagon_features_represented") == 5, f"sparse end is not a pentagon: {r}")
        expect(r.get("pentagon_max_angle_error_deg", 99) < 5, f"pentagon angles off: {r}")
        expect(r.get("dense_features_represented") == 2, f"dense end should keep 2 features: {r}")
    if number == 2:
        expect(r.get("corr_within_pair_abs_cos", 1) < 0.2, f"correlated pairs not orthogonal: {r}")
        expect(r.get("anticorr_within_pair_cos", 0) < -0.9, f"anticorrelated pairs not antipodal: {r}")
    if number == 3:
        expect(max(_as_list(r.get("abs_model_features_represented", 0))) > 20,
               f"no computation in superposition (> 20 features in 40 neurons): {r}")
        expect(r.get("monosemantic_neuron_frac_dense", 0) > r.get("monosemantic_neuron_frac_sparse", 1),
               f"dense models should be more monosemantic than sparse ones: {r}")
    if number == 4:
        curve = r.get("dims_per_feature_curve", [])
        expect(any(2.0 <= x <= 3.6 and 0.45 <= y <= 0.56 for x, y in curve), f"no 1/2 plateau: {curve}")
        expect(curve and curve[0][1] > 0.95, f"dense end should give ~1 dimension per feature: {curve}")
    if number == 5:
        curve = r.get("test_loss_by_dataset_size", [])
        losses = [loss for _, loss in curve]
        expect(len(losses) >= 3 and max(losses) > losses[0] and max(losses) > losses[-1]
               and losses.index(max(losses)) not in (0, len(losses) - 1), f"no double-descent peak: {curve}")
    if number == 6:
        expect(r.get("dead_latents_after_resampling_frac", 1) == 0, f"dead latents remain: {r}")
        expect(r.get("features_recovered_frac", 0) == 1, f"not every feature recovered: {r}")
    if number == 7:
        expect(r.get("loss_recovered", 0) > 0.7, f"the SAEs lose too much of the model's loss: {r}")
        expect(5 <= r.get("l0", 0) <= 80, f"L0 out of the sparse range: {r}")
        expect(r.get("django_latent_precision", 0) > 2 * r.get("django_base_rate", 1),
               f"no latent singles out Django code: {r}")
        expect(0 < r.get("cross_seed_match_frac", 0) <= 1, f"no latents shared by the two seeds: {r}")
    return failures


def _as_list(value):
    return value if isinstance(value, list) else [value]


@pytest.mark.parametrize("path", [
    p if p.stem[:2] in VERIFIED else pytest.param(p, marks=pytest.mark.xfail(
        reason="section in progress: its course check has not been verified yet", strict=False))
    for p in SECTIONS], ids=[p.stem for p in SECTIONS])
def test_section_check(path: Path):
    section = load_valid(path)
    result = check_section(section, fast=True)
    bad = [t for t in result.tests if not (t.solution_ok and t.stub_fails)]
    assert not result.problems, result.problems
    assert result.tests and not bad, [(t.name, t.solution_message, t.stub_message) for t in bad]
    assert result.exercises >= 1
    assert _expectations(section.number, result.results) == []
