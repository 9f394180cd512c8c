"""The course's own checks on what its sections compute (run after `course build --fast`)."""
import json
from pathlib import Path

RESULTS = Path(__file__).resolve().parents[1] / "dist" / "results"


def test_example_section_recorded_a_small_error():
    results = json.loads((RESULTS / "section1.json").read_text())
    assert results["n_points"] == 20
    assert 0.0 < results["mse"] < 0.05
