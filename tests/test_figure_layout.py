"""How multi-panel figures lay out for the site's width: rows of panels, titles fitted to the
narrowest width a figure gets, and helpers that can share one notebook namespace."""

import ast
import collections

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from conftest import REPO
from coursepress import plots
from course_helpers.panels import panel_grid


def test_panels_wrap_into_even_rows_of_at_most_five():
    assert panel_grid(3) == (1, 3)
    assert panel_grid(8) == (2, 4)  # not 5 + 3
    assert panel_grid(16, n_rows=2) == (4, 4)  # eight in a row would be too narrow
    assert panel_grid(20, n_rows=4) == (4, 5)  # a row per seed, five panels each: kept
    assert panel_grid(7, max_cols=4) == (2, 4)
    assert panel_grid(8, n_cols=8, max_cols=4) == (2, 4)
    assert panel_grid(1, n_rows=3) == (1, 1)


def test_min_width_leaves_room_for_every_panel_but_never_exceeds_the_column():
    one = make_subplots(1, 1).update_layout(width=1400).to_dict()["layout"]
    assert plots.site_min_width(one) == 600
    assert plots.site_min_width(make_subplots(1, 2).to_dict()["layout"]) == 2 * plots.PANEL_MIN_PX + 90
    assert plots.site_min_width(make_subplots(2, 8).to_dict()["layout"]) == plots.COLUMN_PX
    assert plots.site_min_width(go.Figure().to_dict()["layout"]) == 0


def test_long_titles_shrink_then_wrap_and_the_top_margin_grows_to_hold_them():
    long = ["fraction of variance explained", "L0 (active latents per input)", "x", "y"]
    fig = make_subplots(1, 4, subplot_titles=long).update_layout(title="A figure title that is long enough to need two lines at this width", height=400)
    fitted = plots.fit_titles(fig.to_dict(), 500)
    titles = [a["text"] for a in fitted["layout"]["annotations"]]
    sizes = [a.get("font", {}).get("size") for a in fitted["layout"]["annotations"]]
    assert titles[0].count("<br>") >= 1 and titles[0].replace("<br>", " ") == long[0]
    assert sizes[0] < 16 and titles[2:] == ["x", "y"] and sizes[2:] == [16, 16]  # short ones untouched
    assert fitted["layout"]["title"]["text"].count("<br>") == 1
    assert fitted["layout"]["margin"]["t"] > 60 and fitted["layout"]["height"] == 400 + fitted["layout"]["margin"]["t"] - 60
    # Each line of each panel title now fits its panel (the estimate the fitting uses).
    panel_px = (500 - 50 - 30) / 4
    assert all(plots._text_px(line, size) <= panel_px for t, size in zip(titles, sizes) for line in t.split("<br>"))
    # A figure that already fits is returned as it was.
    small = make_subplots(1, 2, subplot_titles=["a", "b"]).to_dict()
    assert plots.fit_titles(small, 600) == small
    # A short title is only pinned below the top edge, where the margin has room for it.
    titled = plots.fit_titles(make_subplots(1, 2, subplot_titles=["a", "b"]).update_layout(title="short").to_dict(), 600)
    assert titled["layout"]["title"] == {"text": "short", "y": round(1 - 12 / 450, 4), "yref": "container", "yanchor": "top"}
    assert "margin" not in titled["layout"]


def test_an_animation_keeps_its_wrapped_title_in_every_frame():
    title = "An animated figure whose title is far too long for a phone screen"
    fig = go.Figure(go.Scatter(x=[0], y=[0]), layout=dict(title=f"{title}<br><sub>step 0</sub>"),
                    frames=[go.Frame(name=str(i), layout=dict(title_text=f"{title}<br><sub>step {i}</sub>")) for i in range(3)])
    fitted = plots.fit_titles(fig.to_dict(), 340)
    head = fitted["layout"]["title"]["text"].rsplit("<br><sub>", 1)[0]
    assert head.count("<br>") >= 1 and head.replace("<br>", " ") == title
    assert [f["layout"]["title"]["text"] for f in fitted["frames"]] == [f"{head}<br><sub>step {i}</sub>" for i in range(3)]


def test_helper_modules_define_distinct_top_level_names():
    """The build pastes every helper a section imports into one cell: a name defined by two of them
    (two `_grid`s did) silently takes the last module's meaning in the notebook."""
    owners = collections.defaultdict(list)
    for path in sorted((REPO / "course_helpers").glob("*.py")):
        for node in ast.parse(path.read_text()).body:
            names = [node.name] if isinstance(node, (ast.FunctionDef, ast.ClassDef)) else [
                t.id for t in getattr(node, "targets", []) if isinstance(t, ast.Name)]
            for name in names:
                owners[name].append(path.name)
    assert {n: o for n, o in owners.items() if len(set(o)) > 1} == {}
