"""`course publish`: one deployable tree (site + notebooks + assets), to a folder or a git branch.

The tree is the built site: notebooks live under `<notebooks_dir>/` and each data folder the course
declares (`course.data` in _config.yml) under `_static/<its path>/`, so every Colab badge (GitHub URL of the published branch) and every download
link resolves inside the same tree. `--version X.Y` also keeps a frozen copy under `vX.Y/` whose
links point at its own notebooks, so a class that started on one version is not broken mid-term.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from build_tools.config import load_config

VERSION = re.compile(r"^\d+(\.\d+)*$")


def _git(*args, cwd: Path) -> str:
    result = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} failed: {result.stderr.strip()}")
    return result.stdout.strip()


def _freeze_version(tree: Path, version: str, config: dict) -> None:
    """Copy the current tree to v<version>/ and point its Colab links at its own notebooks."""
    target = tree / f"v{version}"
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(tree, target, ignore=shutil.ignore_patterns("v[0-9]*", ".git", ".nojekyll"))
    old = f"/blob/{config['published_branch']}/{config['notebooks_dir']}/"
    new = f"/blob/{config['published_branch']}/v{version}/{config['notebooks_dir']}/"
    for html in target.rglob("*.html"):
        text = html.read_text(encoding="utf-8")
        if old in text:
            html.write_text(text.replace(old, new), encoding="utf-8")


def assemble(html: Path, dest: Path, config: dict, version: str | None, keep: Path | None = None) -> Path:
    """Write the deployable tree into dest (replacing it). Earlier v*/ folders are kept from `keep`."""
    if not (html / "index.html").exists():
        raise RuntimeError(f"no built site in {html}: run `course build` first")
    staging = Path(tempfile.mkdtemp(prefix="course-publish-"))
    tree = staging / "tree"
    shutil.copytree(html, tree, ignore=shutil.ignore_patterns(".buildinfo", ".doctrees"))
    (tree / ".nojekyll").write_text("")  # GitHub Pages must serve _static/ as is
    for old in sorted((keep or dest).glob("v[0-9]*")) if (keep or dest).exists() else []:
        if old.is_dir() and old.name != f"v{version}":
            shutil.copytree(old, tree / old.name)
    if version:
        _freeze_version(tree, version, config)
    return tree


def publish_to_dir(root: Path, html: Path, dest: Path, version: str | None) -> Path:
    config = load_config(root).as_links_config()
    tree = assemble(html, dest, config, version)
    if dest.exists():
        shutil.rmtree(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(tree), dest)
    return dest


def publish_to_branch(root: Path, html: Path, branch: str, remote: str, version: str | None) -> str:
    """Commit the tree to `branch` of `remote` (plain git, like ghp-import), keeping earlier versions."""
    config = load_config(root).as_links_config()
    url = _git("remote", "get-url", remote, cwd=root)
    work = Path(tempfile.mkdtemp(prefix="course-pages-"))
    _git("init", "-q", cwd=work)
    _git("remote", "add", "origin", url, cwd=work)
    has_branch = bool(_git("ls-remote", "--heads", "origin", branch, cwd=work))
    if has_branch:
        _git("fetch", "-q", "--depth", "1", "origin", branch, cwd=work)
        _git("checkout", "-q", "-B", branch, "FETCH_HEAD", cwd=work)
    else:
        _git("checkout", "-q", "--orphan", branch, cwd=work)
    tree = assemble(html, work, config, version, keep=work)
    for entry in work.iterdir():
        if entry.name != ".git":
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
    for entry in tree.iterdir():
        shutil.move(str(entry), work / entry.name)
    _git("add", "-A", cwd=work)
    _git("-c", "user.name=course publish", "-c", "user.email=course@localhost",
         "commit", "-q", "--allow-empty", "-m", f"Publish course{' v' + version if version else ''}", cwd=work)
    _git("push", "-q", "origin", f"HEAD:refs/heads/{branch}", cwd=work)
    commit = _git("rev-parse", "HEAD", cwd=work)
    shutil.rmtree(work, ignore_errors=True)
    return commit
