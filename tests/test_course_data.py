"""Data folders a course declares (course.data in _config.yml) and a section reads (`data: [...]`):
the kernel finds them through their variable, the cache key follows their contents, the site
serves them, `course data` verifies them, and an undeclared name is a source error."""

import hashlib
import json
from pathlib import Path

import pytest

from conftest import run_course

pytestmark = pytest.mark.slow

CONFIG = '''title: "Data course"
course:
  data:
    words:
      path: data/words
      env: WORDS_DIR
'''
SECTION = '''# ---
# title: "Counting words"
# data: [words]
# ---

# %% [markdown]
# # Counting words

# %% tags=["parameters"]
FAST = False
SEED = 0

# %%
import os
from pathlib import Path

from coursepress.results import save_results

words = (Path(os.environ["WORDS_DIR"]) / "words.txt").read_text().split()
print(f"{len(words)} words")
save_results(1, {"n_words": len(words)})
'''


def make_course(root: Path, words: str = "alpha beta gamma") -> Path:
    (root / "source_exercises").mkdir(parents=True)
    (root / "data" / "words").mkdir(parents=True)
    (root / "_config.yml").write_text(CONFIG)
    (root / "source_exercises" / "01_words.py").write_text(SECTION)
    write_words(root, words)
    return root


def write_words(root: Path, words: str) -> None:
    folder = root / "data" / "words"
    (folder / "words.txt").write_text(words)
    digest = hashlib.sha256(words.encode()).hexdigest()
    (folder / "manifest.json").write_text(json.dumps({"files": {"words.txt": {"sha256": digest, "bytes": len(words)}}}))


def test_declared_data_reaches_the_kernel_the_cache_key_and_the_site(tmp_path):
    root = make_course(tmp_path / "c")
    first = run_course("build", "--fast", cwd=root)
    assert "01_words: executed in" in first.stdout
    assert json.loads((root / "dist/results/section1.json").read_text()) == {"n_words": 3}
    served = root / "book/_build/html/_static/data/words/words.txt"
    assert served.read_text() == "alpha beta gamma"  # where a notebook elsewhere can fetch it
    again = run_course("build", "--fast", "--no-site", cwd=root)
    assert "01_words: cached" in again.stdout
    write_words(root, "alpha beta gamma delta")  # new data: the section runs again
    third = run_course("build", "--fast", "--no-site", cwd=root)
    assert "01_words: executed in" in third.stdout
    assert json.loads((root / "dist/results/section1.json").read_text()) == {"n_words": 4}


def test_course_data_verifies_manifests(tmp_path):
    root = make_course(tmp_path / "c")
    ok = run_course("data", cwd=root)
    assert "words: data/words ($WORDS_DIR) OK" in ok.stdout
    (root / "data/words/words.txt").write_text("alpha beta gamme")  # same size, other bytes
    (root / "data/words/stray.bin").write_bytes(b"x")
    bad = run_course("data", cwd=root, check=False)
    assert bad.returncode == 1
    assert "words.txt: sha256 differs from the manifest" in bad.stdout
    assert "stray.bin: not in the manifest" in bad.stdout


def test_undeclared_data_and_a_bad_config_are_source_errors(tmp_path):
    root = make_course(tmp_path / "c")
    path = root / "source_exercises" / "01_words.py"
    path.write_text(SECTION.replace("data: [words]", "data: [wordz]"))
    result = run_course("build", "--fast", cwd=root, check=False)
    assert result.returncode == 2
    assert f"{path}:1: header 'data' names 'wordz', which _config.yml does not declare (course.data: words)" in result.stdout
    assert not (root / "dist" / "exercises").exists()  # nothing written
    (root / "_config.yml").write_text(CONFIG.replace("env: WORDS_DIR", "env: words dir"))
    result = run_course("build", "--fast", cwd=root, check=False)
    assert result.returncode == 2 and "course.data.words.env must be an UPPER_CASE variable name" in result.stdout
