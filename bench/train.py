"""Section-1 toy-model training speed: the course's loop against a plain one, same model.

    python -m bench.train            # 8 instances, 5 → 2, batch 1024, Adam (section 1's published setup)

The plain loop is what one writes first (and what the public course does): a fresh `generate_batch`
each step (two `torch.rand` draws), the two-einsum forward, the weighted error reduced with einops,
`torch.optim.Adam` with its defaults, torch's default thread count. The course's loop is
`Model.optimize` with the course's solutions. Both train the same model from the same seed.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import time

import einops
import torch
import torch.nn.functional as F

from course_helpers.toy_model import Config, Model


class PlainModel(Model):
    """The toy model as first written: the same exercise API, the straightforward solutions."""

    def forward(self, features):
        hidden = einops.einsum(self.W, features, "inst d_hidden feats, ... inst feats -> ... inst d_hidden")
        out = einops.einsum(self.W, hidden, "inst d_hidden feats, ... inst d_hidden -> ... inst feats")
        return F.relu(out + self.b_final)

    def generate_batch(self, batch_size):
        shape = (batch_size, self.cfg.n_inst, self.cfg.n_features)
        values = torch.rand(shape)
        is_present = torch.rand(shape) < self.feature_probability
        return torch.where(is_present, values, 0.0)

    def calculate_loss(self, out, batch):
        error = self.importance * (batch - out) ** 2
        return einops.reduce(error, "batch inst feats -> inst", "mean").sum()


def plain_train(model: Model, steps: int, batch_size: int = 1024, lr: float = 1e-3) -> None:
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    for _ in range(steps):
        batch = model.generate_batch(batch_size)
        loss = model.calculate_loss(model(batch), batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


def _model(cls, n_inst: int = 8, seed: int = 0) -> Model:
    torch.manual_seed(seed)
    p = 50 ** -torch.linspace(0, 1, 8)[:n_inst].unsqueeze(1)
    importance = 0.9 ** torch.arange(5)
    return cls(Config(n_inst=n_inst, n_features=5, n_hidden=2), feature_probability=p, importance=importance)


def _course_seconds(steps: int) -> float:
    model = _model(Model)
    start = time.perf_counter()
    model.optimize(steps=steps, batch_size=1024, log_freq=10 ** 9)
    return time.perf_counter() - start


def _plain_seconds(steps: int) -> float:
    model = _model(PlainModel)
    start = time.perf_counter()
    plain_train(model, steps)
    return time.perf_counter() - start


@contextlib.contextmanager
def _threads(n: int | None):
    before = torch.get_num_threads()
    torch.set_num_threads(n or before)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _best_of(rounds: int, steps: int, threads: int | None) -> tuple[list[float], list[float]]:
    """Alternating rounds (plain, course, plain, course, ...) after an untimed warm-up of both: the
    first few hundred steps of a fresh process run at a third of the later speed."""
    plain, course = [], []
    with _threads(threads), contextlib.redirect_stdout(io.StringIO()):  # silence the progress bars
        _plain_seconds(300)
        _course_seconds(300)
        for _ in range(rounds):
            plain.append(_plain_seconds(steps))
            course.append(_course_seconds(steps))
    return plain, course


def measure(steps: int = 1000, rounds: int = 5) -> dict:
    """The ratio at torch's default thread count (the plain loop as it comes) and with both loops on
    one thread (what `course build -j 2` gives each kernel): the second isolates the loop and the
    solutions from the thread choice."""
    out = {"train_steps": steps, "train_rounds": rounds, "torch_threads": torch.get_num_threads()}
    for suffix, threads in (("", None), ("_1_thread", 1)):
        plain, course = _best_of(rounds, steps, threads)
        out.update({
            f"train_plain_s{suffix}": min(plain), f"train_course_s{suffix}": min(course),
            f"train_plain_all_s{suffix}": [round(t, 3) for t in plain],
            f"train_course_all_s{suffix}": [round(t, 3) for t in course],
            f"train_loop_vs_plain{suffix}": min(plain) / min(course),
        })
    out["train_steps_per_s"] = steps / out["train_course_s"]
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    print(json.dumps(measure(args.steps, args.rounds), indent=2))
