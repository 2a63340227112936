"""The set of ruleset versions on disk, checked as a whole, and selection of the version in force.

Layout: ``<root>/<name>/<version>.yaml`` per version, with its test cases in
``<root>/<name>/<version>.cases.yaml``, and ``<root>/published.txt`` recording the sha256 of every
published version (a published version's content never changes), and ``<root>/retired.txt`` the published
versions retired and from which day (``name@version from YYYY-MM-DD``, as `regelmotor ruleset export` writes it).

A version governs from its `gyldig_fra` to its `gyldig_til` (inclusive) or, when that is not given,
until the day before the next version starts. Overlaps are errors; a gap between versions is an
error unless the later version declares `allow_gap_before: true`. A correction (`supersedes`) decides in
place of the version it corrects for the days it covers (regelmotor.core.timeline).

**As known when.** Versions kept in a store carry the moments they were published and retired; selection
may be asked "as known at" a moment: only versions published by then count, retirements recorded by then
apply, so what the service would have answered then is answered again. Versions read from a directory carry
no such moments and count as known always.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path

from .errors import (
    Diagnostic,
    NoVersionInForce,
    RulesetInvalid,
    RulesetNotFound,
    VersionNotFound,
    VersionNotPublishedThen,
    VersionRetired,
)
from .loader import load_ruleset_text
from .model import Ruleset, Status
from .timeline import Span, correction_problems, pair_problem

CASES_SUFFIX = ".cases.yaml"
PUBLISHED_FILE = "published.txt"
RETIRED_FILE = "retired.txt"


def ruleset_files(root: Path) -> list[Path]:
    return sorted(p for p in root.glob("*/*.yaml") if not p.name.endswith(CASES_SUFFIX))


def read_published(root: Path) -> dict[str, str]:
    """`name@version` -> sha256 from the publication record."""
    record = root / PUBLISHED_FILE
    return parse_published(record.read_text(encoding="utf-8")) if record.exists() else {}


def parse_published(text: str) -> dict[str, str]:
    published: dict[str, str] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 3 and not line.startswith("#"):
            published[f"{parts[0]}@{parts[1]}"] = parts[2]
    return published


def read_retired(record: Path) -> tuple[tuple[str, str], ...]:
    """The lines ``name@version from YYYY-MM-DD`` of a retired.txt (none when there is no such file)."""
    if not record.exists():
        return ()
    retired: list[tuple[str, str]] = []
    problems: list[Diagnostic] = []
    for number, line in enumerate(record.read_text(encoding="utf-8").splitlines(), start=1):
        parts = line.split()
        if not parts or line.startswith("#"):
            continue
        try:
            if len(parts) != 3 or parts[1] != "from" or "@" not in parts[0]:
                raise ValueError(line)
            retired.append((parts[0], date.fromisoformat(parts[2]).isoformat()))
        except ValueError:
            problems.append(Diagnostic(str(record), number, 1, f"expected 'name@version from YYYY-MM-DD', got "
                                                               f"{line[:200]!r}"))
    if problems:
        raise RulesetInvalid(problems)
    return tuple(retired)


@dataclass(frozen=True)
class RulesetSnapshot:
    """The ruleset files of a directory as read at one moment: every process of an instance builds its
    repository from the same snapshot, so a file changed on disk later cannot make two workers (or a worker
    and the front) serve different versions. Plain data, so it crosses to worker processes as it is."""

    root: str
    files: tuple[tuple[str, str], ...]  # (path, text) of each version file, sorted by path
    published: str  # the text of published.txt ("" when there is none)
    # Retired versions (`name@version`, first day no longer covered, YYYY-MM-DD): a directory's retired.txt, or
    # what the store says of its published versions (regelmotor.store.versions).
    retired: tuple[tuple[str, str], ...] = ()
    # When each version was published and when its retirement was recorded (`name@version`, ISO 8601 UTC):
    # from a store only (a directory's versions count as known always).
    published_at: tuple[tuple[str, str], ...] = ()
    retired_at: tuple[tuple[str, str], ...] = ()

    @classmethod
    def read(cls, root: str | Path) -> RulesetSnapshot:
        base = Path(root)
        files: list[tuple[str, str]] = []
        for path in ruleset_files(base):
            try:
                files.append((str(path), path.read_text(encoding="utf-8")))
            except (OSError, UnicodeDecodeError) as exc:
                raise RulesetInvalid([Diagnostic(str(path), 1, 1, f"cannot read file: {exc}")]) from None
        record = base / PUBLISHED_FILE
        published = record.read_text(encoding="utf-8") if record.exists() else ""
        return cls(str(base), tuple(files), published, read_retired(base / RETIRED_FILE))


@dataclass(frozen=True)
class Period:
    ruleset: Ruleset
    start: date
    end: date | None  # inclusive; None: open-ended

    def covers(self, day: date) -> bool:
        return self.start <= day and (self.end is None or day <= self.end)

    def describe(self) -> str:
        end = self.end.isoformat() if self.end else "…"
        return f"{self.ruleset.meta.version}: {self.start.isoformat()} – {end}"


@dataclass
class RulesetRepository:
    versions: dict[str, dict[str, Ruleset]] = field(default_factory=dict)  # name -> version -> ruleset
    include_drafts: bool = False
    sources: dict[str, str] = field(default_factory=dict)  # ruleset key -> the source text it was loaded from
    # ruleset key -> the day from which a retired version no longer answers: it is never selected by date, and
    # answers pinned requests only for days before this one (so replays of its decisions keep working).
    retired: dict[str, date] = field(default_factory=dict)
    # ruleset key -> when it was published and when its retirement was recorded (a store's versions only).
    published_at: dict[str, datetime] = field(default_factory=dict)
    retired_at: dict[str, datetime] = field(default_factory=dict)
    # A version tested by itself (a proposal's sandbox, `ruleset test`): a correction stands on the timeline like
    # any version, since what it corrects is not there; the store checks that relation when it is approved.
    alone: bool = False

    @classmethod
    def load(cls, root: str | Path, *, include_drafts: bool = False,
             only: set[str] | None = None) -> RulesetRepository:
        """Load and check every version under `root` (or of the rulesets named in `only`); all problems
        are reported together."""
        return cls.from_snapshot(RulesetSnapshot.read(root), include_drafts=include_drafts, only=only)

    @classmethod
    def from_snapshot(cls, snapshot: RulesetSnapshot, *, include_drafts: bool = False,
                      only: set[str] | None = None) -> RulesetRepository:
        """Load and check every version of a snapshot; all problems are reported together."""
        diagnostics: list[Diagnostic] = []
        repo = cls(include_drafts=include_drafts,
                   retired={key: date.fromisoformat(day) for key, day in snapshot.retired},
                   published_at={key: datetime.fromisoformat(at) for key, at in snapshot.published_at},
                   retired_at={key: datetime.fromisoformat(at) for key, at in snapshot.retired_at})
        published = parse_published(snapshot.published)
        for name, text in snapshot.files:
            path = Path(name)
            if only is not None and path.parent.name not in only:
                continue
            try:
                ruleset = load_ruleset_text(text, name)
            except RulesetInvalid as exc:
                diagnostics.extend(exc.diagnostics)
                continue
            problem = _placement_problem(path, ruleset) or _publication_problem(ruleset, published)
            if problem:
                diagnostics.append(Diagnostic(name, ruleset.meta.lines.get("version", 1), 1, problem))
                continue
            repo.versions.setdefault(ruleset.meta.name, {})[ruleset.meta.version] = ruleset
            repo.sources[ruleset.key] = text
        for name in repo.versions:
            diagnostics.extend(repo._timeline_problems(name))
        if diagnostics:
            raise RulesetInvalid(diagnostics)
        return repo

    def add(self, ruleset: Ruleset, source: str = "") -> None:
        self.versions.setdefault(ruleset.meta.name, {})[ruleset.meta.version] = ruleset
        self.sources[ruleset.key] = source
        problems = self._timeline_problems(ruleset.meta.name)
        if problems:
            del self.versions[ruleset.meta.name][ruleset.meta.version]
            del self.sources[ruleset.key]
            raise RulesetInvalid(problems)

    def version_count(self) -> int:
        """How many versions it holds, of every ruleset."""
        return sum(len(versions) for versions in self.versions.values())

    def names(self) -> list[str]:
        return sorted(self.versions)

    def source(self, ruleset: Ruleset) -> str:
        """The text a version was loaded from (as read when the repository was made, not as on disk now)."""
        return self.sources.get(ruleset.key, "")

    def all_versions(self, name: str) -> list[Ruleset]:
        """Every version, by start; a correction after the version it corrects (they often start on one day), so the
        last is the newest."""
        if name not in self.versions:
            raise RulesetNotFound(name, self.names())
        versions = self.versions[name]

        def corrections_below(ruleset: Ruleset) -> int:
            depth, superseded = 0, ruleset.meta.supersedes
            while superseded is not None and superseded in versions and depth < len(versions):
                depth, superseded = depth + 1, versions[superseded].meta.supersedes
            return depth

        return sorted(versions.values(), key=lambda r: (r.meta.gyldig_fra, corrections_below(r), r.meta.version))

    def get(self, name: str, version: str) -> Ruleset:
        versions = self.versions.get(name)
        if versions is None:
            raise RulesetNotFound(name, self.names())
        if version not in versions:
            raise VersionNotFound(name, version, sorted(versions))
        return versions[version]

    def known(self, ruleset: Ruleset, known_at: datetime | None) -> bool:
        """Whether `ruleset` was published by `known_at` (None: now; a version without a moment: always)."""
        published = self.published_at.get(ruleset.key)
        return known_at is None or published is None or published <= known_at

    def is_retired(self, ruleset: Ruleset, known_at: datetime | None = None) -> bool:
        """Whether `ruleset`'s retirement was recorded by `known_at` (None: now)."""
        if ruleset.key not in self.retired:
            return False
        recorded = self.retired_at.get(ruleset.key)
        return known_at is None or recorded is None or recorded <= known_at

    def _selectable(self, ruleset: Ruleset, drafts: bool, known_at: datetime | None) -> bool:
        return ((drafts or ruleset.meta.status is Status.PUBLISHED) and self.known(ruleset, known_at)
                and not self.is_retired(ruleset, known_at))

    def periods(self, name: str, *, include_drafts: bool | None = None,
                known_at: datetime | None = None) -> list[Period]:
        """The versions on the timeline (corrections are not) with the days each governs, as known at
        `known_at` (None: now)."""
        drafts = self.include_drafts if include_drafts is None else include_drafts
        selectable = [r for r in self.all_versions(name)
                      if (r.meta.supersedes is None or self.alone) and self._selectable(r, drafts, known_at)]
        periods: list[Period] = []
        for index, ruleset in enumerate(selectable):
            end = ruleset.meta.gyldig_til
            if end is None and index + 1 < len(selectable):
                end = selectable[index + 1].meta.gyldig_fra - timedelta(days=1)
            periods.append(Period(ruleset, ruleset.meta.gyldig_fra, end))
        return periods

    def check_pinned(self, ruleset: Ruleset, day: date, known_at: datetime | None = None) -> None:
        """Raise VersionRetired when a pinned `ruleset` is retired (as known at `known_at`; None: now) and `day`
        is not before its retirement; VersionNotPublishedThen when it was not yet published at `known_at`."""
        if not self.known(ruleset, known_at):
            assert known_at is not None
            raise VersionNotPublishedThen(ruleset.meta.name, ruleset.meta.version, known_at.isoformat(),
                                          self.published_at[ruleset.key].isoformat())
        retired_from = self.retired.get(ruleset.key)
        if retired_from is not None and day >= retired_from and self.is_retired(ruleset, known_at):
            raise VersionRetired(ruleset.meta.name, ruleset.meta.version, retired_from, day)

    def selecting_fact(self, name: str) -> str | None:
        """The fact that selects a version of `name` (None: as_of). Loading and `add` keep it the same for every
        version, so it is read without sorting them (asked on every evaluation); should they differ, the earliest
        version's."""
        versions = self.versions.get(name)
        if versions:
            facts = {ruleset.meta.selected_by for ruleset in versions.values()}
            if len(facts) == 1:
                return facts.pop()
        return self.all_versions(name)[0].meta.selected_by

    def select(self, name: str, day: date, known_at: datetime | None = None) -> Ruleset:
        """The single version in force on `day` (by its selecting fact, else as_of), as known at `known_at`
        (None: now): the version on the timeline, or the correction that supersedes it on that day."""
        periods = self.periods(name, known_at=known_at)
        for period in periods:
            if period.covers(day):
                return self._corrected(period.ruleset, day, known_at)
        described = [p.describe() for p in periods]
        drafts = [r.meta.version for r in self.all_versions(name) if r.meta.status is Status.DRAFT]
        if drafts and not self.include_drafts:
            described.append(f"draft versions {', '.join(drafts)} are not selected by date (pin them, or allow drafts)")
        unknown = [self.published_at[r.key] for r in self.all_versions(name)
                   if known_at is not None and not self.known(r, known_at)]
        if unknown:
            described.append(f"as known at {known_at.isoformat() if known_at else ''}: versions published later are "
                             f"left out (the first of them at {min(unknown).isoformat()})")
        raise NoVersionInForce(name, self.selecting_fact(name) or "as_of", day, described or ["no published version"])

    def _corrected(self, ruleset: Ruleset, day: date, known_at: datetime | None) -> Ruleset:
        """`ruleset`, or its correction covering `day` (and that one's, and so on) as known at `known_at`. The
        load's checks leave at most one correction of a version per day, and no circles."""
        if self.alone:
            return ruleset
        corrections = [r for r in self.versions[ruleset.meta.name].values() if r.meta.supersedes is not None
                       and self._selectable(r, self.include_drafts, known_at)]
        chosen = ruleset
        for _ in range(len(corrections)):
            found = next((c for c in corrections if c.meta.supersedes == chosen.meta.version
                          and c.meta.gyldig_fra <= day and (c.meta.gyldig_til is None or day <= c.meta.gyldig_til)),
                         None)
            if found is None:
                break
            chosen = found
        return chosen

    def superseded(self, ruleset: Ruleset) -> tuple[str, datetime | None] | None:
        """For a correction: the version it supersedes, and when the correction was published (None for a
        version read from a directory); None for any other version."""
        if ruleset.meta.supersedes is None:
            return None
        return ruleset.meta.supersedes, self.published_at.get(ruleset.key)

    def _timeline_problems(self, name: str) -> list[Diagnostic]:
        problems: list[Diagnostic] = []
        versions = self.all_versions(name)
        selectors = {r.meta.selected_by for r in versions}
        if len(selectors) > 1:
            first = versions[0]
            message = f"versions of {name!r} select by different facts: {sorted(map(str, selectors))}"
            problems.append(Diagnostic(first.source_path, first.meta.lines.get("selected_by", 1), 1, message))
        for drafts in (False, True):
            periods = self.periods(name, include_drafts=drafts)
            for earlier, later in itertools.pairwise(periods):
                problems.extend(_pair_problems(earlier, later))
            if self.alone:
                continue
            shown = [r for r in versions if (drafts or r.meta.status is Status.PUBLISHED) and r.key not in self.retired]
            by_version = {r.meta.version: r for r in shown}
            for problem in correction_problems(name, [span_of(r) for r in shown]):
                placed = by_version[problem.version]
                problems.append(Diagnostic(placed.source_path, placed.meta.lines.get(problem.key, 1), 1,
                                           problem.message))
        unique: dict[tuple[int, str], Diagnostic] = {(d.line, d.file + d.message): d for d in problems}
        return list(unique.values())


def _pair_problems(earlier: Period, later: Period) -> list[Diagnostic]:
    a, b = earlier.ruleset, later.ruleset
    problem = pair_problem(a.meta.name, span_of(a), earlier.end, span_of(b))
    if problem is None:
        return []
    placed = a if problem.version == a.meta.version else b
    return [Diagnostic(placed.source_path, placed.meta.lines.get(problem.key, 1), 1, problem.message)]


def span_of(ruleset: Ruleset) -> Span:
    meta = ruleset.meta
    return Span(meta.version, meta.gyldig_fra, meta.gyldig_til, meta.allow_gap_before, meta.supersedes)


def _placement_problem(path: Path, ruleset: Ruleset) -> str | None:
    expected = (ruleset.meta.name, f"{ruleset.meta.version}.yaml")
    if (path.parent.name, path.name) != expected:
        return (f"file must be at <rulesets>/{expected[0]}/{expected[1]} for ruleset {ruleset.meta.name!r} "
                f"version {ruleset.meta.version!r}")
    return None


def _publication_problem(ruleset: Ruleset, published: dict[str, str]) -> str | None:
    recorded = published.get(ruleset.key)
    if recorded is not None and recorded != ruleset.sha256:
        return (f"{ruleset.key} was published with sha256 {recorded[:16]}…, but this file's content has "
                f"sha256 {ruleset.sha256[:16]}…: a published version never changes; make a new version")
    if recorded is None and ruleset.meta.status is Status.PUBLISHED:
        return (f"{ruleset.key} says status: published but is not in {PUBLISHED_FILE}; "
                "record it with `regelmotor ruleset publish`")
    return None
