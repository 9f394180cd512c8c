"""Section 7's language-model assets: the recipe end to end (smoke preset), the checksum check,
the committed assets, and the loading path (repository copy, or a download from the course site)."""

import functools
import http.server
import json
import os
import shutil
import threading
from pathlib import Path

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from lm_recipe import cli as lm_cli  # noqa: E402
from lm_recipe import recipe as lm_assets  # noqa: E402
from course_helpers import lm  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
COMMITTED = REPO / "assets" / "lm"


@pytest.fixture(scope="module")
def toy_assets(tmp_path_factory):
    """Build the assets at toy scale (a few stdlib packages; no network), once for this module."""
    root = tmp_path_factory.mktemp("lm_toy")
    record = lm_assets.build_assets(root / "out", scale="smoke", device="cpu", cache_dir=root / "cache", seed=0)
    return root / "out", record


def _heldout_loss(model, tokens) -> float:
    """Mean next-token loss, predictions made at positions 1.. (the build's convention)."""
    with torch.no_grad():
        per_token = model(tokens, return_type="loss", loss_per_token=True)
    return per_token[:, 1:].mean().item()


def test_toy_build_writes_consistent_assets(toy_assets, monkeypatch):
    out, record = toy_assets
    assert lm_assets.check_assets(out) == []
    assert sorted(p.name for p in out.iterdir()) == sorted((*lm_assets.ASSET_FILES, "manifest.json"))

    monkeypatch.setenv("COURSE_LM_ASSETS", str(out))
    model = lm.load_course_model()
    saes = lm.load_saes()
    tokens, doc_ids, docs = lm.load_heldout()
    scale = lm_assets.SCALES["smoke"]
    assert tuple(tokens.shape) == (scale.n_heldout_rows, scale.n_ctx)
    assert (tokens[:, 0] == 0).all(), "every row starts with BOS (<|endoftext|>, id 0)"
    assert doc_ids.shape == tokens.shape and (doc_ids[:, 0] == -1).all()
    assert int(doc_ids.max()) == len(docs) - 1 and {"source", "path", "kind", "django"} <= set(docs[0])
    assert model.cfg.d_mlp == scale.d_mlp and model.cfg.d_vocab == scale.vocab_size
    assert (saes.cfg.n_inst, saes.cfg.d_in, saes.cfg.d_sae) == (scale.n_seeds, scale.d_mlp, scale.d_mlp * scale.sae_mult)

    # The committed (fp16) weights reproduce the loss the build recorded, on the same rows.
    assert _heldout_loss(model, tokens[: scale.eval_rows]) == pytest.approx(record["heldout_eval"]["loss_clean"], abs=2e-4)
    # Training did something: the recorded loss is well below a uniform guess over the vocabulary.
    assert record["heldout_eval"]["loss_clean"] < 0.9 * torch.log(torch.tensor(float(scale.vocab_size))).item()
    # The recorded L0 is what the loaded SAEs give on the held-out activations (BOS left out).
    with torch.no_grad():
        _, cache = model.run_with_cache(tokens[: scale.eval_rows], names_filter=lm.HOOK_NAME)
        h = cache[lm.HOOK_NAME][:, 1:].reshape(-1, scale.d_mlp)
        z = saes(h[:, None, :].expand(-1, saes.cfg.n_inst, -1)).z
    l0 = (z > 0).float().sum(-1).mean(0)
    assert l0.tolist() == pytest.approx(record["heldout_eval"]["l0"], abs=1e-3)
    # Both seeds share the calibrated L1 coefficient, and the labelled "Django" stand-in is there.
    assert saes.cfg.l1_coeff == pytest.approx(record["sae"]["l1_coeff"])
    assert 0 < record["corpus"]["heldout_django_share"] < 1


def test_check_assets_reports_problems(toy_assets, tmp_path):
    out, _ = toy_assets
    broken = tmp_path / "lm"
    shutil.copytree(out, broken)
    with open(broken / "model.safetensors", "r+b") as f:  # flip one byte, same size
        first = f.read(1)
        f.seek(0)
        f.write(bytes([first[0] ^ 1]))
    (broken / "notes.txt").write_text("stray")
    (broken / "tokenizer.json").unlink()
    problems = lm_assets.check_assets(broken)
    assert any("model.safetensors" in p and "sha256" in p for p in problems), problems
    assert any("tokenizer.json" in p and "missing" in p for p in problems), problems
    assert any("notes.txt" in p for p in problems), problems
    (broken / "manifest.json").unlink()
    assert any("manifest.json" in p for p in lm_assets.check_assets(broken))
    assert lm_cli.main(["check", "--out", str(out)]) == 0
    assert lm_cli.main(["check", "--out", str(broken)]) == 1


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture()
def site(tmp_path):
    """A static site on 127.0.0.1 that serves files under `_static/assets/lm/`, like the course site."""
    root = tmp_path / "site"
    (root / "_static" / "assets").mkdir(parents=True)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


def test_download_from_site(toy_assets, site, tmp_path, monkeypatch):
    out, _ = toy_assets
    root, url = site
    shutil.copytree(out, root / "_static" / "assets" / "lm")
    monkeypatch.delenv("COURSE_LM_ASSETS", raising=False)
    monkeypatch.setenv("COURSE_ASSET_BASE_URL", url)
    monkeypatch.setenv("COURSE_LM_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)  # no assets/lm above this folder

    # As in a notebook: the helper's code pasted in (no __file__), so it cannot find the repository.
    notebook = {"__name__": "__main__"}
    exec(compile((REPO / "course_helpers" / "lm.py").read_text(), "<notebook cell>", "exec"), notebook)
    got = notebook["asset_dir"]()
    assert got == tmp_path / "cache"
    for name in lm_assets.ASSET_FILES:
        assert (got / name).read_bytes() == (out / name).read_bytes()
    assert lm_assets.check_assets(got) == []

    # A corrupted file on the site is refused, not used.
    served = root / "_static" / "assets" / "lm" / "saes.safetensors"
    served.write_bytes(served.read_bytes()[:-1] + b"\0")
    shutil.rmtree(tmp_path / "cache")
    with pytest.raises(RuntimeError, match="checksum"):
        notebook["asset_dir"]()


def test_default_site_url_matches_config():
    config = (REPO / "_config.yml").read_text()
    site_url = next(line.split(":", 1)[1].strip().strip('"') for line in config.splitlines() if line.strip().startswith("site_url:"))
    assert lm.DEFAULT_SITE_URL == site_url
    assert lm.asset_base_url().endswith("/_static/assets/lm/")


def test_committed_assets_pass_the_check():
    assert COMMITTED.is_dir(), "assets/lm/ is missing: run `lm-assets build`"
    assert lm_assets.check_assets(COMMITTED) == []


def test_committed_assets_load_and_match_their_record(monkeypatch):
    monkeypatch.setenv("COURSE_LM_ASSETS", str(COMMITTED))
    record = json.loads((COMMITTED / "training.json").read_text())
    model = lm.load_course_model()
    saes = lm.load_saes()
    tokens, doc_ids, docs = lm.load_heldout()
    eval_rows = record["settings"]["eval_rows"]
    assert _heldout_loss(model, tokens[:eval_rows]) == pytest.approx(record["heldout_eval"]["loss_clean"], abs=1e-3)
    assert saes.W_dec.norm(dim=-1).sub(1).abs().max() < 2e-3, "decoder rows are unit vectors (up to fp16 rounding)"
    ev = record["heldout_eval"]
    # What the section teaches rests on these: a model that learned code, and usable SAEs.
    assert ev["loss_clean"] < 4.5
    assert all(5 <= x <= 80 for x in ev["l0"]), ev["l0"]
    assert all(x > 0.6 for x in ev["loss_recovered_zero"]), ev["loss_recovered_zero"]
    assert all(x < 0.5 for x in ev["dead_frac"]), ev["dead_frac"]
    assert 0.05 < record["corpus"]["heldout_django_share"] < 0.3
    assert sum(d["django"] for d in docs) > 0


def test_loading_prints_nothing_to_stderr(capfd, monkeypatch):
    """nbgrader gives 0 points to a cell with stderr output: loading must keep stderr empty."""
    monkeypatch.setenv("COURSE_LM_ASSETS", str(COMMITTED))
    lm.load_course_model()
    lm.load_saes()
    assert capfd.readouterr().err == ""
