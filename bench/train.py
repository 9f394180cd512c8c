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


def measure(steps: int = 2000) -> dict:
    import contextlib
    import io

    with contextlib.redirect_stdout(io.StringIO()):  # silence the progress bars
        vectorised = _train_seconds(_model(8, 0), steps)
        one_at_a_time = 0.0
        for i in range(8):
            single = _model(8, 0)
            # One instance: slice the buffers so the model trains instance i alone.
            lone = Model(Config(n_inst=1, n_features=5, n_hidden=2),
                         feature_probability=single.feature_probability[i:i + 1],
                         importance=single.importance[i:i + 1])
            one_at_a_time += _train_seconds(lone, steps)
    return {
        "train_steps": steps,
        "train_vectorised_s": vectorised,
        "train_loop_s": one_at_a_time,
        "train_vectorised_speedup": one_at_a_time / vectorised,
        "train_steps_per_s": steps / vectorised,
        "torch_threads": torch.get_num_threads(),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=2000)
    print(json.dumps(measure(parser.parse_args().steps), indent=2))
