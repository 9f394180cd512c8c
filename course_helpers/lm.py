"""Section 7's language model, its two SAEs and held-out tokens: one loading path for everyone.

The course trains its own 1-layer GELU transformer and SAEs (`assets/lm_recipe/`, the `lm-assets` command) and commits
them under `assets/lm/`. `asset_dir()` finds them:

1. `$COURSE_LM_ASSETS` if set;
2. the repository's `assets/lm/` (searched upwards from the working directory);
3. otherwise a copy downloaded once from the course site, `<base>/_static/assets/lm/`, where the base
   URL is `$COURSE_ASSET_BASE_URL` or the published site. Every file is checked against the
   manifest's SHA-256, so a broken download fails loudly instead of giving odd results.

`load_gelu_1l_from_hub()` is the option for students with internet who want the original public
model (`gelu-1l`) and Neel Nanda's two SAEs on it; the analysis code is the same.
"""
import hashlib
import json
import os
import urllib.request
import warnings
from pathlib import Path

import torch
from jaxtyping import Int
from safetensors.torch import load_file
from torch import Tensor

from course_helpers.sae import SAEConfig, SparseAutoencoder

# The published course site (kept equal to `course.site_url` in the repository's _config.yml).
DEFAULT_SITE_URL = "https://superposition-course.github.io/superposition-course/"
ASSET_SUBDIR = "_static/assets/lm/"
HOOK_NAME = "blocks.0.mlp.hook_post"
EOT = "<|endoftext|>"


def _verify(directory: Path, manifest: dict) -> list[str]:
    bad = []
    for name, entry in manifest["files"].items():
        path = directory / name
        if not path.exists() or hashlib.sha256(path.read_bytes()).hexdigest() != entry["sha256"]:
            bad.append(name)
    return bad


def _repo_assets() -> Path | None:
    here = Path.cwd().resolve()
    starts = [here, *here.parents]
    if "__file__" in globals():  # imported from the repository (not inlined in a notebook)
        starts.insert(0, Path(__file__).resolve().parent.parent)
    for folder in starts:
        candidate = folder / "assets" / "lm"
        if (candidate / "manifest.json").exists():
            return candidate
    return None


def asset_base_url() -> str:
    base = os.environ.get("COURSE_ASSET_BASE_URL", DEFAULT_SITE_URL)
    return base.rstrip("/") + "/" + ASSET_SUBDIR


def download_assets(dest: Path | None = None, base_url: str | None = None) -> Path:
    """Fetch the assets from the course site into `dest` (skipping files already there and intact)."""
    dest = Path(dest or os.environ.get("COURSE_LM_CACHE", Path.home() / ".cache" / "superposition-course" / "lm"))
    dest.mkdir(parents=True, exist_ok=True)
    base_url = base_url or asset_base_url()
    with urllib.request.urlopen(base_url + "manifest.json", timeout=60) as response:
        manifest_bytes = response.read()
    manifest = json.loads(manifest_bytes)
    for name in _verify(dest, manifest):
        size = manifest["files"][name]["bytes"]
        print(f"Downloading {name} ({size / 1e6:.1f} MB) from {base_url}")
        tmp = dest / (name + ".part")
        urllib.request.urlretrieve(base_url + name, tmp)
        tmp.replace(dest / name)
    bad = _verify(dest, manifest)
    if bad:
        raise RuntimeError(f"Downloaded assets do not match their checksums: {bad} (from {base_url})")
    (dest / "manifest.json").write_bytes(manifest_bytes)
    return dest


def asset_dir() -> Path:
    """The directory holding the model/SAE files (see the module docstring for the search order)."""
    if os.environ.get("COURSE_LM_ASSETS"):
        return Path(os.environ["COURSE_LM_ASSETS"])
    found = _repo_assets()
    if found is not None:
        return found
    return download_assets()


def _read_json(name: str) -> dict:
    return json.loads((asset_dir() / name).read_text())


def tokenizer_from_file(path) -> "PreTrainedTokenizerFast":
    """Wrap a `tokenizers` JSON for TransformerLens, which wants a transformers tokenizer.

    `<|endoftext|>` (id 0) separates documents and is also BOS: with `add_bos_token` the tokenizer
    prepends it itself, so `model.to_tokens("...")` gives rows shaped like the training rows.
    """
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(
        tokenizer_file=str(path), bos_token=EOT, eos_token=EOT, pad_token=EOT, unk_token=EOT,
        add_bos_token=True, name_or_path="course-gelu-1l",
    )


def _byte_level_decoder() -> dict[str, int]:
    """GPT-2's byte-level alphabet: the printable character that stands for each byte in the vocabulary."""
    printable = list(range(33, 127)) + list(range(161, 173)) + list(range(174, 256))
    chars, extra = [], 0
    for b in range(256):
        if b in printable:
            chars.append(chr(b))
        else:
            chars.append(chr(256 + extra))
            extra += 1
    return {c: b for b, c in enumerate(chars)}


def vocab_strings(tokenizer) -> list[str]:
    """Each token's text, for display. A token that holds part of a multi-byte character (it decodes to
    the replacement character on its own) is shown as its bytes instead, e.g. `\\xe2\\x80`."""
    to_byte = _byte_level_decoder()
    out = []
    for i, piece in enumerate(tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))):
        text = tokenizer.decode([i])
        if "\ufffd" in text and piece and all(c in to_byte for c in piece):
            text = "".join(f"\\x{to_byte[c]:02x}" for c in piece)
        out.append(text)
    return out


def load_tokenizer():
    """The course's byte-level BPE tokenizer (see `tokenizer_from_file`)."""
    return tokenizer_from_file(asset_dir() / "tokenizer.json")


def load_course_model(device: str = "cpu"):
    """The course's 1-layer GELU transformer as a TransformerLens `HookedTransformer` (eval mode, frozen)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing of ours lives on the hub
    with warnings.catch_warnings():
        # TransformerLens 3.9 announces its 4.0 API on stderr; graded notebook cells must keep stderr empty.
        warnings.simplefilter("ignore")
        from transformer_lens import HookedTransformer, HookedTransformerConfig

        config = _read_json("model_config.json")
        model = HookedTransformer(HookedTransformerConfig(**config, device=device), tokenizer=load_tokenizer())
    state = {k: v.float() for k, v in load_file(str(asset_dir() / "model.safetensors")).items()}
    missing, unexpected = model.load_state_dict(state, strict=False)  # buffers (masks) are not stored
    if unexpected or {name for name, _ in model.named_parameters()} & set(missing):
        raise RuntimeError(f"model.safetensors does not fit the config: missing {missing}, unexpected {unexpected}")
    model.to(device).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def load_saes(device: str = "cpu") -> SparseAutoencoder:
    """The two SAEs (same L1, different seeds) as the two instances of one `SparseAutoencoder`."""
    cfg = _read_json("sae_config.json")
    sae = SparseAutoencoder(
        SAEConfig(n_inst=cfg["n_inst"], d_in=cfg["d_in"], d_sae=cfg["d_sae"], l1_coeff=cfg["l1_coeff"]), device=device
    )
    weights = load_file(str(asset_dir() / "saes.safetensors"))
    with torch.no_grad():
        sae.W_enc.copy_(weights["W_enc"].float())
        sae._W_dec.copy_(weights["W_dec"].float())
        sae.b_enc.copy_(weights["b_enc"].float())
        sae.b_dec.copy_(weights["b_dec"].float())
    for p in sae.parameters():
        p.requires_grad_(False)
    return sae


def load_heldout(n_rows: int | None = None) -> tuple[Int[Tensor, "row pos"], Int[Tensor, "row pos"], list[dict]]:
    """Held-out token rows (files never seen in training), each row starting with BOS.

    Returns (tokens [row pos], doc_ids [row pos], docs): doc_ids index `docs` (-1 on BOS/EOT tokens),
    and each doc is {"source", "path", "kind", "django"}.
    """
    data = load_file(str(asset_dir() / "heldout.safetensors"))
    docs = _read_json("heldout_docs.json")
    tokens, doc_ids = data["tokens"].long(), data["doc_ids"].long()
    if n_rows is not None:
        tokens, doc_ids = tokens[:n_rows], doc_ids[:n_rows]
    return tokens, doc_ids, docs


def training_record() -> dict:
    """How the assets were made: settings, times and the metrics measured when they were built."""
    return _read_json("training.json")


def load_gelu_1l_from_hub(device: str = "cpu", n_rows: int = 2048):
    """The original public setup, for students with internet: `gelu-1l` and Neel Nanda's SAEs 25 and 47.

    Returns (model, saes, tokens) with `saes` a 2-instance `SparseAutoencoder` (d_in 2048, d_sae 16384)
    and `tokens` [n_rows, 128] from the c4-code dataset. Needs `huggingface_hub` and `datasets`.
    """
    os.environ.pop("HF_HUB_OFFLINE", None)
    from datasets import load_dataset
    from huggingface_hub import hf_hub_download

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from transformer_lens import HookedTransformer
        from transformer_lens.utils import tokenize_and_concatenate

        model = HookedTransformer.from_pretrained("gelu-1l", device=device)
    runs = [25, 47]
    states = [torch.load(hf_hub_download("NeelNanda/sparse_autoencoder", f"{r}.pt"), map_location="cpu") for r in runs]
    with open(hf_hub_download("NeelNanda/sparse_autoencoder", f"{runs[0]}_cfg.json")) as f:
        cfg = json.load(f)
    d_in, d_sae = states[0]["W_enc"].shape
    saes = SparseAutoencoder(SAEConfig(n_inst=2, d_in=d_in, d_sae=d_sae, l1_coeff=cfg["l1_coeff"]), device=device)
    with torch.no_grad():
        for name in ("W_enc", "b_enc", "b_dec"):
            getattr(saes, name).copy_(torch.stack([s[name] for s in states]))
        saes._W_dec.copy_(torch.stack([s["W_dec"] for s in states]))
    data = load_dataset("NeelNanda/c4-code-20k", split="train")
    tokens = tokenize_and_concatenate(data, model.tokenizer, max_length=128).shuffle(42)["tokens"][:n_rows]
    return model, saes, tokens
