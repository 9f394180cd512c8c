"""Section 7's own helpers and promises: dashboards (course_helpers/dashboards.py), the asset search
order of course_helpers/lm.py, and the metrics the section must record. (`course check --only 7`
runs the section itself, its graded tests and stubs.)"""

import ast
import inspect
import os
import re
from pathlib import Path

import plotly.graph_objects as go
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from course_helpers import dashboards, lm  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SECTION = REPO / "source_exercises" / "07_saes_language_model.py"


def test_tokens_html_shades_by_activation_and_escapes():
    out = dashboards.tokens_html(["<b>", " x", "\n", "y"], [0.0, 1.0, 0.5, 2.0], max_act=1.0, centre=1)
    assert "&lt;b&gt;" in out, "token text must be escaped"
    alphas = [float(a) for a in re.findall(r"rgba\(\d+,\d+,\d+,([0-9.]+)\)", out)]
    assert alphas == [0.0, 1.0, 0.5, 1.0], "shade = activation / max, clipped to [0, 1]"
    assert out.count("outline") == 1 and "⏎" in out and "&nbsp;x" in out
    assert 'title="&#x27;&lt;b&gt;&#x27;: 0.000"' in out, "hover text: the token and its activation"


def test_contexts_table_and_dashboard_figure():
    contexts = [
        {"str_tokens": ["a", "b"], "acts": [0.1, 0.9], "centre": 1, "value": 0.9, "label": "django/db/models.py"},
        {"str_tokens": ["c"], "acts": [0.3], "centre": 0, "value": 0.3, "label": "json/decoder.py"},
    ]
    table = dashboards.contexts_html(contexts, max_act=0.9, caption="Top <contexts>")
    assert table.count("<tr>") == 3 and "django/db/models.py" in table and "0.900" in table
    assert "Top &lt;contexts&gt;" in table
    fig = dashboards.dashboard_figure([0.1, 0.2, 0.5], 0.012, [("x", 1.5), ("y", 1.0)], [("z", -2.0)], "t")
    assert isinstance(fig, go.Figure)
    hist, bars = fig.data
    assert hist.type == "histogram" and list(hist.x) == [0.1, 0.2, 0.5]
    assert bars.type == "bar" and list(bars.x) == [-2.0, 1.0, 1.5], "bottom logits first, largest at the top"
    assert fig.layout.yaxis.type == "log"


def test_asset_dir_search_order(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_LM_ASSETS", str(tmp_path / "explicit"))
    assert lm.asset_dir() == tmp_path / "explicit"
    monkeypatch.delenv("COURSE_LM_ASSETS")
    project = tmp_path / "proj"
    (project / "assets" / "lm").mkdir(parents=True)
    (project / "assets" / "lm" / "manifest.json").write_text("{}")
    (project / "dist" / ".work" / "07").mkdir(parents=True)
    monkeypatch.chdir(project / "dist" / ".work" / "07")  # where the build executes the notebook
    notebook = {"__name__": "__main__"}  # the helper as pasted into a notebook: no __file__
    exec(compile((REPO / "course_helpers" / "lm.py").read_text(), "<notebook cell>", "exec"), notebook)
    assert notebook["asset_dir"]() == project / "assets" / "lm"
    assert notebook["asset_base_url"]() == lm.DEFAULT_SITE_URL.rstrip("/") + "/_static/assets/lm/"
    monkeypatch.setenv("COURSE_ASSET_BASE_URL", "http://127.0.0.1:8000/")
    assert notebook["asset_base_url"]() == "http://127.0.0.1:8000/_static/assets/lm/"


def test_hub_option_is_kept():
    params = inspect.signature(lm.load_gelu_1l_from_hub).parameters
    assert list(params) == ["device", "n_rows"]
    source = inspect.getsource(lm.load_gelu_1l_from_hub)
    assert '"gelu-1l"' in source and "NeelNanda/sparse_autoencoder" in source


def _saved_keys() -> set[str]:
    tree = ast.parse(SECTION.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "results" for t in node.targets):
            return {k.value for k in node.value.keys}
    raise AssertionError("the section defines no `results` dict")


def test_section_records_the_required_metrics():
    required = {"loss_recovered", "dead_frac", "l0", "explained_variance", "django_base_rate",
                "django_latent_precision", "cross_seed_match_frac"}
    assert required <= _saved_keys()
    text = SECTION.read_text()
    assert "save_results(7, results)" in text
    # Frequencies are firing rates (z > 0), the first position is excluded from losses.
    assert "(z > 0).float()" in text and "per_token[:, 1:]" in text


@pytest.mark.parametrize("name", ["latent_frequencies", "pairwise_cosines", "reconstruction_metrics",
                                  "per_sequence_losses", "latent_activations", "top_activations", "logit_effect",
                                  "neuron_shares", "activation_precision", "max_cosine_across", "latent_attributions"])
def test_every_exercise_function_has_a_graded_test(name):
    text = SECTION.read_text()
    tests = re.findall(r'# %% test="(\w+)" points=\d+\n(.*?)(?=\n# %%)', text, flags=re.S)
    assert any(f"{name}(" in body for _, body in tests), f"no graded test calls {name}"
