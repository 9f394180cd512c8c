"""Section 7's language-model assets: the recipe that trains them (`recipe.py`) and its CLI.

`lm-assets build [--preset committed|one-gpu|smoke]` rebuilds `assets/lm/` (corpus from PyPI
packages → tokenizer → 1-layer transformer → SAEs); `lm-assets check` verifies the committed files
against their checksums. The tooling knows none of this: the course declares `assets/lm` as a data
folder in _config.yml, and `course data --check` verifies it like any other.
"""
