"""The course's own settings: the ``course:`` block of ``_config.yml`` (jupyter-book ignores it).

Everything one course needs and another would not is declared here, never written into the
tooling: where the helpers live, data folders that sections read at run time, due dates.

```yaml
course:
  github_repo: owner/repo           # Colab badges open notebooks from this repository ...
  published_branch: gh-pages        # ... on this branch ...
  notebooks_dir: notebooks          # ... under this folder of the published tree
  site_url: https://owner.github.io/repo/
  helpers: course_helpers           # package inlined into notebooks (`from course_helpers.X import ...`)
  data:                             # read-only folders that sections declare with `data: [corpus]`
    corpus:
      path: data/corpus             # relative to the course root
      env: CORPUS_DIR               # the kernel gets this variable: the folder's absolute path
  grading:                          # `course grade` / `regrade` / `report`
    gradebook: grading/gradebook.db # nbgrader's gradebook (default); never under dist/
    timezone: Europe/London         # how due dates and a zip's file times are read (default UTC)
    due:                            # per section (number or stem)
      1: "2026-10-05 23:59"
    late_penalty:                   # applied at export, shown in feedback
      percent_per_day: 10           # of the points scored, per started day late
      max_percent: 50               # the penalty never exceeds this
      zero_after_days: 7            # later than this: 0 points
      grace_minutes: 5              # submissions within this of the deadline are on time
```
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from build_tools.source import SourceError

CONFIG_FILE = "_config.yml"
ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")
PACKAGE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class ConfigError(SourceError):
    """A problem in ``_config.yml``, formatted as ``path: message`` (reported like a problem in a
    section file: every command that reads the sources prints it and writes nothing)."""

    def __init__(self, message: str):
        super().__init__([message])


@dataclass(frozen=True)
class DataFolder:
    """A folder of files that some sections read while they run (a model, a data set)."""

    name: str
    path: Path  # absolute
    env: str  # the variable that tells a kernel where the folder is
    relative: str  # as written in the config, relative to the course root

    def digest(self) -> str:
        """Content hash of the folder: part of the cache key of every section that reads it.

        A ``manifest.json`` (name → sha256) stands for the files it lists, so a large folder is not
        re-read on every build; without one every file is hashed.
        """
        h = hashlib.sha256()
        manifest = self.path / "manifest.json"
        if manifest.is_file():
            h.update(manifest.read_bytes())
            return h.hexdigest()
        for f in sorted(p for p in self.path.rglob("*") if p.is_file()):
            h.update(str(f.relative_to(self.path)).encode())
            h.update(f.read_bytes())
        return h.hexdigest()

    def verify(self) -> list[str]:
        """Problems with the folder against its ``manifest.json`` (``{"files": {name: {"sha256",
        "bytes"}}}``): missing, changed or unlisted files. [] when it matches, or when the folder has
        no manifest and exists (nothing to verify against)."""
        if not self.path.is_dir():
            return [f"{self.path}: missing (declared as data folder {self.name!r} in _config.yml)"]
        manifest = self.path / "manifest.json"
        if not manifest.is_file():
            return []
        try:
            files = json.loads(manifest.read_text())["files"]
        except (ValueError, KeyError, TypeError) as err:
            return [f"{manifest}: unreadable ({err})"]
        problems = []
        for name, entry in sorted(files.items()):
            path = self.path / name
            if not path.is_file():
                problems.append(f"{path}: missing")
            elif path.stat().st_size != entry.get("bytes", path.stat().st_size):
                problems.append(f"{path}: {path.stat().st_size} bytes, the manifest says {entry['bytes']}")
            elif hashlib.sha256(path.read_bytes()).hexdigest() != entry.get("sha256"):
                problems.append(f"{path}: sha256 differs from the manifest")
        listed = set(files) | {"manifest.json"}
        problems += [f"{p}: not in the manifest" for p in sorted(self.path.rglob("*"))
                     if p.is_file() and str(p.relative_to(self.path)) not in listed]
        return problems


@dataclass(frozen=True)
class LatePenalty:
    """Late work: `percent_per_day` of the score per started day late, at most `max_percent`;
    0 points when more than `zero_after_days` late (None: never)."""

    percent_per_day: float = 0.0
    max_percent: float = 100.0
    zero_after_days: float | None = None
    grace_minutes: float = 0.0


@dataclass(frozen=True)
class GradingConfig:
    gradebook: Path | None = None  # absolute; None: <course root>/grading/gradebook.db
    timezone: str = "UTC"
    due: dict[str, dt.datetime] = field(default_factory=dict)  # section selector -> aware datetime
    late_penalty: LatePenalty = field(default_factory=LatePenalty)

    def due_for(self, stem: str, number: int | None) -> dt.datetime | None:
        """The due date of a section given by stem (`01_toy`) or number (1, "01")."""
        for key in (stem, str(number) if number is not None else None, f"{number:02d}" if number is not None else None):
            if key is not None and key in self.due:
                return self.due[key]
        return None


@dataclass(frozen=True)
class CourseConfig:
    root: Path
    title: str = "Course"
    github_repo: str = "OWNER/REPO"
    published_branch: str = "gh-pages"
    notebooks_dir: str = "notebooks"
    site_url: str = ""
    helpers: str = "course_helpers"
    data: dict[str, DataFolder] = field(default_factory=dict)
    grading: GradingConfig = field(default_factory=GradingConfig)
    raw: dict = field(default_factory=dict)  # the whole `course:` block, for settings other modules own

    def as_links_config(self) -> dict:
        return {"github_repo": self.github_repo, "published_branch": self.published_branch,
                "notebooks_dir": self.notebooks_dir, "site_url": self.site_url}

    def data_for(self, names: list[str]) -> list[DataFolder]:
        return [self.data[n] for n in names if n in self.data]

    def kernel_env(self, names: list[str]) -> dict[str, str]:
        """Variables a kernel of a section that reads these data folders gets."""
        return {d.env: str(d.path) for d in self.data_for(names)}


def load_config(root: Path) -> CourseConfig:
    """Read and check ``root/_config.yml``. A course without the file or the block gets defaults."""
    root = Path(root).resolve()
    path = root / CONFIG_FILE
    if not path.is_file():
        return CourseConfig(root=root)
    try:
        config = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise ConfigError(f"{where}: invalid YAML: {getattr(err, 'problem', err)}") from None
    if not isinstance(config, dict):
        raise ConfigError(f"{path}: must be a mapping (key: value)")
    course = config.get("course") or {}
    if not isinstance(course, dict):
        raise ConfigError(f"{path}: 'course:' must be a mapping")
    helpers = str(course.get("helpers", "course_helpers"))
    if not PACKAGE_NAME.match(helpers):
        raise ConfigError(f"{path}: course.helpers must be a package name, got {helpers!r}")
    data = {}
    for name, entry in (course.get("data") or {}).items():
        if not isinstance(entry, dict) or "path" not in entry or "env" not in entry:
            raise ConfigError(f"{path}: course.data.{name} needs 'path' and 'env'")
        env = str(entry["env"])
        if not ENV_NAME.match(env):
            raise ConfigError(f"{path}: course.data.{name}.env must be an UPPER_CASE variable name, got {env!r}")
        folder = (root / str(entry["path"])).resolve()
        if root not in folder.parents and folder != root:
            raise ConfigError(f"{path}: course.data.{name}.path must lie inside the course folder")
        data[str(name)] = DataFolder(str(name), folder, env, str(entry["path"]))
    return CourseConfig(
        root=root,
        title=str(config.get("title", "Course")),
        github_repo=str(course.get("github_repo", "OWNER/REPO")),
        published_branch=str(course.get("published_branch", "gh-pages")),
        notebooks_dir=str(course.get("notebooks_dir", "notebooks")),
        site_url=str(course.get("site_url", "")),
        helpers=helpers,
        data=data,
        grading=_grading(path, root, course.get("grading") or {}),
        raw=course,
    )


def parse_when(text, zone: dt.tzinfo) -> dt.datetime:
    """A date or date-time as written in the config or an extensions file; naive ones are in `zone`.
    A bare date means the end of that day."""
    if isinstance(text, dt.datetime):
        when = text
    elif isinstance(text, dt.date):
        when = dt.datetime.combine(text, dt.time(23, 59, 59))
    else:
        raw = str(text).strip()
        when = dt.datetime.fromisoformat(raw)
        if len(raw) <= 10:
            when = when.replace(hour=23, minute=59, second=59)
    return when if when.tzinfo else when.replace(tzinfo=zone)


def _number(path: Path, where: str, value, minimum: float = 0.0) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < minimum:
        raise ConfigError(f"{path}: {where} must be a number >= {minimum:g}, got {value!r}")
    return float(value)


def _grading(path: Path, root: Path, block) -> GradingConfig:
    if not isinstance(block, dict):
        raise ConfigError(f"{path}: course.grading must be a mapping")
    unknown = set(block) - {"gradebook", "timezone", "due", "late_penalty"}
    if unknown:
        raise ConfigError(f"{path}: course.grading: unknown setting(s) {sorted(unknown)} "
                          "(known: due, gradebook, late_penalty, timezone)")
    zone_name = str(block.get("timezone", "UTC"))
    try:
        zone = ZoneInfo(zone_name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"{path}: course.grading.timezone {zone_name!r} is not a time zone name (e.g. Europe/Paris)")
    gradebook = None
    if block.get("gradebook"):
        gradebook = (root / str(block["gradebook"])).resolve()
        if (root / "dist").resolve() in gradebook.parents:
            raise ConfigError(f"{path}: course.grading.gradebook must not lie under dist/ (make clean deletes it)")
    due = {}
    if not isinstance(block.get("due") or {}, dict):
        raise ConfigError(f"{path}: course.grading.due must map sections to dates")
    for key, value in (block.get("due") or {}).items():
        try:
            due[str(key)] = parse_when(value, zone)
        except (TypeError, ValueError):
            raise ConfigError(f"{path}: course.grading.due.{key}: {value!r} is not a date "
                              "(write 2026-10-05 or \"2026-10-05 23:59\")") from None
    rule = block.get("late_penalty") or {}
    if not isinstance(rule, dict):
        raise ConfigError(f"{path}: course.grading.late_penalty must be a mapping")
    unknown = set(rule) - {"percent_per_day", "max_percent", "zero_after_days", "grace_minutes"}
    if unknown:
        raise ConfigError(f"{path}: course.grading.late_penalty: unknown setting(s) {sorted(unknown)}")
    where = "course.grading.late_penalty."
    penalty = LatePenalty(
        percent_per_day=_number(path, where + "percent_per_day", rule.get("percent_per_day", 0)),
        max_percent=_number(path, where + "max_percent", rule.get("max_percent", 100)),
        zero_after_days=(None if rule.get("zero_after_days") is None
                         else _number(path, where + "zero_after_days", rule["zero_after_days"])),
        grace_minutes=_number(path, where + "grace_minutes", rule.get("grace_minutes", 0)),
    )
    return GradingConfig(gradebook=gradebook, timezone=zone_name, due=due, late_penalty=penalty)
