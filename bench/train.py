"""Section-1 toy-model training speed: vectorised over instances vs one instance at a time.

    python -m bench.train            # steps/s as published (8 instances, 5 → 2, batch 1024, Adam)
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from course_helpers.toy_model import Config, Model


def _model(n_inst: int, seed: int) -> Model:
    torch.manual_seed(seed)
    p = 50 ** -torch.linspace(0, 1, 8)[:n_inst].unsqueeze(1)
    importance = 0.9 ** torch.arange(5)
    return Model(Config(n_inst=n_inst, n_features=5, n_hidden=2), feature_probability=p, importance=importance)


def _train_seconds(model: Model, steps: int) -> float:
    start = time.perf_counter()
    model.optimize(steps=steps, batch_size=1024, log_freq=10 ** 9)
    return time.perf_counter() - start


def _lone(i: int) -> Model:
    """Instance i of the published 8-instance model, as a model of its own (same buffers and init)."""
    full = _model(8, 0)
    return Model(Config(n_inst=1, n_features=5, n_hidden=2),
                 feature_probability=full.feature_probability[i:i + 1], importance=full.importance[i:i + 1])


def measure(steps: int = 1000, rounds: int = 3) -> dict:
    """Best of `rounds` alternating trials of each way, after an untimed warm-up of both.

    The warm-up matters here: the first few hundred steps of a fresh process ran at a third of the
    later speed (9 ms/step vs 3 ms on this VM), and the vectorised model, timed first, used to pay it.
    """
    import contextlib
    import io

    vectorised, loop = [], []
    with contextlib.redirect_stdout(io.StringIO()):  # silence the progress bars
        _train_seconds(_model(8, 0), 300)
        _train_seconds(_lone(0), 300)
        for _ in range(rounds):
            vectorised.append(_train_seconds(_model(8, 0), steps))
            loop.append(sum(_train_seconds(_lone(i), steps) for i in range(8)))
    return {
        "train_steps": steps,
        "train_rounds": rounds,
        "train_vectorised_s": min(vectorised),
        "train_loop_s": min(loop),
        "train_vectorised_all_s": [round(t, 2) for t in vectorised],
        "train_loop_all_s": [round(t, 2) for t in loop],
        "train_vectorised_speedup": min(loop) / min(vectorised),
        "train_steps_per_s": steps / min(vectorised),
        "torch_threads": torch.get_num_threads(),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(json.dumps(measure(args.steps, args.rounds), indent=2))
