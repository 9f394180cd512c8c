"""Fast tests of the section-6 helpers: course_helpers/sae.py (SAE, metrics, resampling, training)
and course_helpers/sae_plots.py. Everything is seeded and small (well under 20 s in total)."""

import json

import pytest
import torch

from course_helpers.sae import (
    SAEConfig,
    SAEOutput,
    SparseAutoencoder,
    find_dead_latents,
    find_duplicate_latents,
    reinitialize_latents,
    resample_advanced,
    resample_simple,
    sae_metrics,
    train_sae,
)
from course_helpers.sae_plots import (
    animate_latents,
    plot_frac_active,
    plot_latents_vs_features,
    plot_reconstructions,
    plot_training_curves,
)


def _reference(sae, h):
    zs, recs = [], []
    for i in range(sae.cfg.n_inst):
        z = torch.relu((h[:, i] - sae.b_dec[i]) @ sae.W_enc[i] + sae.b_enc[i])
        zs.append(z)
        recs.append(z @ sae.W_dec[i] + sae.b_dec[i])
    z, rec = torch.stack(zs, 1), torch.stack(recs, 1)
    l2 = ((rec - h) ** 2).mean(-1)
    l1 = z.abs().sum(-1)
    return l1, l2, (l2 + sae.cfg.l1_coeff * l1).mean(0).sum(), z, rec


@pytest.mark.parametrize("tied", [False, True])
def test_forward_matches_reference(tied):
    torch.manual_seed(0)
    sae = SparseAutoencoder(SAEConfig(3, 4, 6, l1_coeff=0.3, tied_weights=tied))
    with torch.no_grad():
        sae.b_enc.normal_()
        sae.b_dec.normal_()
    h = torch.randn(10, 3, 4)
    out = sae(h)
    for got, want in zip(out, _reference(sae, h)):
        torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-4)
    assert torch.allclose(sae.W_dec.norm(dim=-1), torch.ones(3, 6), atol=1e-6)
    if tied:
        assert sae._W_dec is None and torch.equal(sae.W_dec, sae.W_enc.transpose(-1, -2))
        assert {n for n, _ in sae.named_parameters()} == {"W_enc", "b_enc", "b_dec"}


def test_loss_reduction_is_per_instance_sum():
    torch.manual_seed(1)
    sae = SparseAutoencoder(SAEConfig(2, 3, 4, l1_coeff=0.7))
    h = torch.randn(5, 2, 3)
    out = sae(h)
    per_inst = (out.l2_loss + 0.7 * out.l1_loss).mean(0)
    torch.testing.assert_close(out.loss, per_inst.sum())
    # Instance 1's loss does not depend on instance 0's data.
    h2 = h.clone()
    h2[:, 0] *= 10
    out2 = sae(h2)
    torch.testing.assert_close(out2.l2_loss[:, 1], out.l2_loss[:, 1])


def test_normalize_decoder_tied_and_untied():
    torch.manual_seed(2)
    for tied in (False, True):
        sae = SparseAutoencoder(SAEConfig(2, 3, 5, tied_weights=tied))
        with torch.no_grad():
            sae.W_dec.mul_(torch.rand(2, 5, 1) * 4 + 0.1)
        direction = sae.W_dec / sae.W_dec.norm(dim=-1, keepdim=True)
        sae.normalize_decoder()
        torch.testing.assert_close(sae.W_dec, direction)


def test_remove_parallel_decoder_grad():
    torch.manual_seed(3)
    for tied in (False, True):
        sae = SparseAutoencoder(SAEConfig(2, 3, 5, tied_weights=tied))
        sae(torch.randn(8, 2, 3)).loss.backward()
        sae.remove_parallel_decoder_grad()
        grad = sae.W_enc.grad.transpose(-1, -2) if tied else sae._W_dec.grad
        parallel = (grad * sae.W_dec).sum(-1)
        assert parallel.abs().max() < 1e-6


def test_metrics():
    torch.manual_seed(4)
    h = torch.randn(12, 2, 3)
    z = torch.relu(torch.randn(12, 2, 5))
    rec = h + 0.1 * torch.randn(12, 2, 3)
    l2 = ((rec - h) ** 2).mean(-1)
    m = sae_metrics(h, SAEOutput(z.sum(-1), l2, l2.mean(0).sum(), z, rec))
    torch.testing.assert_close(m["l0"], (z > 0).float().sum(-1).mean(0))
    torch.testing.assert_close(m["l2_loss"], l2.mean(0))
    fve = 1 - ((h - rec) ** 2).sum((0, 2)) / ((h - h.mean(0)) ** 2).sum((0, 2))
    torch.testing.assert_close(m["fve"], fve)


def test_dead_latents_use_the_window():
    history = torch.zeros(10, 1, 3)
    history[2, 0, 0] = 0.1  # fired 8 steps ago
    history[5, 0, 1] = 0.1  # fired 5 steps ago
    assert find_dead_latents(history, 8).tolist() == [[False, False, True]]  # steps 2..9
    assert find_dead_latents(history, 7).tolist() == [[True, False, True]]  # steps 3..9
    assert find_dead_latents(history, 4).tolist() == [[True, True, True]]  # steps 6..9
    assert not find_dead_latents(history, 11).any()
    # A threshold on the mean firing fraction over the window.
    history[8, 0, 2] = 0.004  # mean 0.001 over the last 4 steps
    assert find_dead_latents(history, 4, threshold=1e-3).tolist() == [[True, True, True]]
    assert find_dead_latents(history, 4, threshold=5e-4).tolist() == [[True, True, False]]
    # NaN marks "just resampled": such a latent is not dead.
    history[:, 0, 2] = float("nan")
    assert find_dead_latents(history, 3).tolist() == [[True, True, False]]


def _sae_with_state(tied, seed=5):
    torch.manual_seed(seed)
    sae = SparseAutoencoder(SAEConfig(3, 4, 6, tied_weights=tied))
    with torch.no_grad():
        sae.b_enc.normal_()
        if not tied:
            sae.W_enc.mul_(torch.rand(3, 1, 6) + 0.5)
    opt = torch.optim.Adam(sae.parameters(), lr=1e-3)
    sae(torch.randn(16, 3, 4)).loss.backward()
    opt.step()
    return sae, opt


@pytest.mark.parametrize("tied", [False, True])
def test_reinitialize_only_touches_dead_latents(tied):
    sae, opt = _sae_with_state(tied)
    dead = torch.tensor([[True, False, False, False, True, False], [False] * 6, [True] * 6])
    directions = torch.nn.functional.normalize(torch.randn(3, 6, 4), dim=-1)
    W_enc0, W_dec0, b_enc0 = sae.W_enc.detach().clone(), sae.W_dec.detach().clone(), sae.b_enc.detach().clone()
    m0 = opt.state[sae.W_enc]["exp_avg"].clone()
    reinitialize_latents(sae, dead, directions, 0.2, opt)
    alive = ~dead
    assert torch.equal(sae.W_dec[alive], W_dec0[alive])
    assert torch.equal(sae.W_enc.transpose(-1, -2)[alive], W_enc0.transpose(-1, -2)[alive])
    assert torch.equal(sae.b_enc[alive], b_enc0[alive])
    assert (sae.b_enc[dead] == 0).all()
    torch.testing.assert_close(sae.W_dec[dead], directions[dead])
    norms = sae.W_enc.norm(dim=1)
    if tied:
        torch.testing.assert_close(norms[dead], torch.ones(int(dead.sum())))
    else:
        alpha0 = W_enc0.norm(dim=1)[0, alive[0]].mean()
        torch.testing.assert_close(norms[0, dead[0]], (0.2 * alpha0).expand(2))
        torch.testing.assert_close(norms[2], torch.full((6,), 0.2))  # no alive latent: alpha = 1
    m = opt.state[sae.W_enc]["exp_avg"]
    assert (m[:, :, :][dead[:, None, :].expand_as(m)] == 0).all()
    assert torch.equal(m[alive[:, None, :].expand_as(m)], m0[alive[:, None, :].expand_as(m)])


def test_resample_simple_random_unit_directions():
    sae, opt = _sae_with_state(False)
    dead = torch.zeros(3, 6, dtype=torch.bool)
    dead[1, :4] = True
    resample_simple(sae, dead, 0.5, opt)
    rows = sae.W_dec[dead]
    torch.testing.assert_close(rows.norm(dim=-1), torch.ones(4))
    assert torch.pdist(rows).min() > 1e-3


def test_resample_advanced_weights_by_loss_not_squared_loss():
    torch.manual_seed(6)
    sae = SparseAutoencoder(SAEConfig(1, 2, 3000))
    with torch.no_grad():
        sae.b_enc.fill_(-100.0)  # every latent shut: h' = b_dec
        sae.b_dec.copy_(torch.tensor([[0.3, -0.2]]))
    h = sae.b_dec.detach().expand(10, 1, 2).clone()
    h[2, 0] += torch.tensor([1.0, 0.0])  # loss 1/2
    h[7, 0] += torch.tensor([0.0, 2.0])  # loss 4/2: 4x the weight (16x if squared again)
    resample_advanced(sae, h, torch.ones(1, 3000, dtype=torch.bool), 0.2)
    picked_big = (sae.W_dec[0, :, 1] > 0.999).float().mean().item()
    picked_small = (sae.W_dec[0, :, 0] > 0.999).float().mean().item()
    assert 0.76 < picked_big < 0.84 and abs(picked_big + picked_small - 1) < 1e-6


def test_train_logs_and_window():
    torch.manual_seed(7)
    sae = SparseAutoencoder(SAEConfig(2, 3, 4))
    with torch.no_grad():
        sae.b_enc[:, 1] = -100.0
    h = torch.randn(32, 2, 3)
    log = train_sae(sae, lambda b: h, steps=25, batch_size=32, lr=0.0, log_every=5, dead_window=12, progress=False)
    assert log["step"].tolist() == [0, 5, 10, 15, 20, 24]
    assert log["dead_frac"][:, 0].tolist() == [0, 0, 0, 0.25, 0.25, 0.25]
    assert log["l0"].shape == (6, 2) and log["frac_active"].shape == (6, 2, 4)
    assert not log["resampled"].any()


@pytest.mark.parametrize("tied", [False, True])
def test_train_with_resampling_end_to_end(tied):
    """Tied weights crashed in the original course; both kinds must run and resample."""
    torch.manual_seed(8)
    sae = SparseAutoencoder(SAEConfig(2, 2, 6, tied_weights=tied))
    with torch.no_grad():
        sae.b_enc[:, :3] = -100.0  # three latents per instance start dead
    features = torch.nn.functional.normalize(torch.randn(2, 2, 3), dim=1)

    def sample(b):
        x = (torch.rand(b, 2, 3) < 0.1) * torch.rand(b, 2, 3)
        return torch.einsum("idf,bif->bid", features, x)

    log = train_sae(sae, sample, steps=120, batch_size=256, lr=1e-2, log_every=10, dead_window=20,
                    resample="advanced", resample_every=50, resample_until=60, snapshot_weights=True, progress=False)
    events = log["step"][log["resampled"].flatten(1).any(-1)].tolist()
    assert events == [50]  # at step 50 only: resample_until=60 stops the one at step 100
    assert log["resampled"][5].sum() >= 6  # the three shut latents of both instances
    assert log["W_dec"].shape == (13, 2, 6, 2) and log["W_enc"].shape == (13, 2, 2, 6)
    assert torch.allclose(sae.W_dec.norm(dim=-1), torch.ones(2, 6), atol=1e-5)


def test_max_resampled_per_inst_rewrites_one_latent_per_event():
    torch.manual_seed(10)
    sae = SparseAutoencoder(SAEConfig(2, 2, 5))
    with torch.no_grad():
        sae.b_enc[:, :3] = -100.0  # three dead latents per instance
    log = train_sae(sae, lambda b: torch.randn(b, 2, 2), steps=101, batch_size=64, lr=0.0, log_every=10,
                    dead_window=20, dead_threshold=1e-3, resample="advanced", resample_every=50,
                    max_resampled_per_inst=1, progress=False)
    per_event = log["resampled"][log["resampled"].flatten(1).any(-1)].sum(-1)  # [event inst]
    assert per_event.tolist() == [[1, 1], [1, 1]]
    # Two different latents per instance were rewritten, and the third is still dead at the end.
    assert (log["resampled"].sum(0) == torch.tensor([[1, 1, 0, 0, 0]] * 2)).all()
    torch.testing.assert_close(log["dead_frac"][-1], torch.tensor([0.2, 0.2]))


def test_twins_stay_twins():
    """Why one latent per event: two latents rewritten identically never separate."""
    torch.manual_seed(11)
    sae = SparseAutoencoder(SAEConfig(1, 2, 4))
    opt = torch.optim.Adam(sae.parameters(), lr=1e-2)
    v = torch.nn.functional.normalize(torch.randn(1, 4, 2), dim=-1)
    v[0, 3] = v[0, 2]
    reinitialize_latents(sae, torch.tensor([[False, False, True, True]]), v, 0.2, opt)
    sample = lambda b: torch.randn(b, 1, 2) * (torch.rand(b, 1, 1) < 0.3)
    for _ in range(30):
        out = sae(sample(128))
        opt.zero_grad()
        out.loss.backward()
        opt.step()
        sae.normalize_decoder()
    torch.testing.assert_close(sae.W_dec[0, 2], sae.W_dec[0, 3])
    torch.testing.assert_close(sae.W_enc[0, :, 2], sae.W_enc[0, :, 3])


def test_find_duplicate_latents_marks_the_weaker_of_a_pair():
    sae = SparseAutoencoder(SAEConfig(2, 2, 4))
    with torch.no_grad():
        angles = torch.tensor([[0.0, 1.0, 0.0005, 2.0], [0.0, 1.0, 2.0, 3.0]])
        sae._W_dec.copy_(torch.stack([angles.cos(), angles.sin()], dim=-1))
        sae.W_enc.copy_(torch.ones(2, 2, 4))
        sae.W_enc[0, :, 0] = 0.3  # latent 0 is the weaker of the pair (0, 2)
    assert find_duplicate_latents(sae, 0.99).tolist() == [[True, False, False, False], [False] * 4]
    with torch.no_grad():
        sae.W_enc[0, :, 0] = 1.0  # equal strength: the later index gives way
    assert find_duplicate_latents(sae, 0.99).tolist() == [[False, False, True, False], [False] * 4]


def test_train_rejects_bad_settings():
    sae = SparseAutoencoder(SAEConfig(1, 2, 3))
    with pytest.raises(ValueError):
        train_sae(sae, lambda b: torch.zeros(b, 1, 2), steps=1, resample="random", progress=False)
    with pytest.raises(ValueError):
        train_sae(sae, lambda b: torch.zeros(b, 1, 2), steps=1, resample="simple", dead_window=500,
                  resample_every=400, progress=False)


def _fake_log(n_logs=30, n_inst=3, d_sae=4):
    torch.manual_seed(9)
    resampled = torch.zeros(n_logs, n_inst, d_sae, dtype=torch.bool)
    resampled[10, 0, 1] = resampled[20, 2, 3] = True
    return {
        "step": torch.arange(n_logs) * 100,
        "l0": torch.rand(n_logs, n_inst), "l2_loss": torch.rand(n_logs, n_inst) + 0.01,
        "fve": torch.rand(n_logs, n_inst), "dead_frac": torch.rand(n_logs, n_inst),
        "frac_active": torch.rand(n_logs, n_inst, d_sae) * 0.02, "resampled": resampled,
        "W_enc": torch.randn(n_logs, n_inst, 2, d_sae),
        "W_dec": torch.nn.functional.normalize(torch.randn(n_logs, n_inst, d_sae, 2), dim=-1),
    }


def test_animation_has_frames_controls_and_red_resampled_latents():
    log = _fake_log()
    fig = animate_latents(log, torch.randn(3, 2, 5), title="test", max_frames=12)
    assert fig.layout.updatemenus and fig.layout.sliders
    names = [f.name for f in fig.frames]
    assert len(names) <= 14 and {"1000", "2000", "2900"} <= set(names)  # resampling logs and the last one kept
    frame = fig.frames[names.index("1000")]
    red = [t for t in frame.data if t.line.color == "#d62728" and any(x is not None for x in t.x)]
    assert len(red) == 1  # instance 0, latent 1
    assert len(json.dumps(fig.to_plotly_json(), default=str)) < 300_000
    from coursepress.plots import figure_description

    caption = figure_description(json.loads(fig.to_json()))  # the page's text alternative
    assert caption.startswith("Figure: test") and f"Animated: {len(names)} frames" in caption
    enc = animate_latents(log, torch.randn(3, 2, 5), title="test", key="W_enc", max_frames=5)
    assert len(enc.frames) >= 3


def test_static_figures_build():
    log = _fake_log()
    plot_latents_vs_features(torch.randn(3, 4, 2), torch.randn(3, 2, 5), title="t").to_json()
    plot_frac_active(log, 0.01, title="t").to_json()
    plot_training_curves({"a": log, "b": log}, title="t").to_json()
    plot_reconstructions(torch.randn(20, 3, 2), torch.randn(20, 3, 2), title="t").to_json()
