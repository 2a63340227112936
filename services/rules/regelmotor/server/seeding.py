"""The ruleset versions an instance serves: from the store beside its decision log, seeded from the rulesets
directory when the store holds none yet (a fresh clone's `make run` serves the bundled versions).

Without a decision log (`decision_log = off`) there is no store, and the directory is served as it is.
The directory is the operator's, read by the server as at any start; a caller's source is never parsed here.
"""

from __future__ import annotations

import logging
from pathlib import Path

from regelmotor.core.errors import RegelmotorError, RulesetInvalid
from regelmotor.core.model import Ruleset, Status
from regelmotor.core.repository import CASES_SUFFIX, RulesetRepository, RulesetSnapshot
from regelmotor.store import DecisionLog, RulesetStore, State, VersionMeta, VersionText

from .startup import StartupError, load_rulesets

log = logging.getLogger("regelmotor.server")
SEED_ACTOR = "regelmotor (first start)"


def meta_of(ruleset: Ruleset) -> VersionMeta:
    """What the store keeps of a parsed version besides its texts."""
    meta = ruleset.meta
    return VersionMeta(meta.title, meta.gyldig_fra, meta.gyldig_til, meta.allow_gap_before, meta.selected_by,
                       tuple(sorted(h.id for h in ruleset.hjemler.values() if not h.verified)), meta.supersedes,
                       meta.correction_reason)


def directory_versions(repository: RulesetRepository) -> list[tuple[VersionText, State]]:
    """Each version of a directory's repository, with its cases file's text, as published or draft."""
    found = []
    for name in repository.names():
        for ruleset in repository.all_versions(name):
            cases = Path(ruleset.source_path[: -len(".yaml")] + CASES_SUFFIX)
            text = VersionText(name, ruleset.meta.version, repository.source(ruleset),
                               cases.read_text(encoding="utf-8") if cases.exists() else "", ruleset.sha256,
                               meta_of(ruleset))
            found.append((text, State.PUBLISHED if ruleset.meta.status is Status.PUBLISHED else State.DRAFT))
    return found


def served_rulesets(root: Path, decision_log: DecisionLog | None, *,
                    include_drafts: bool) -> tuple[RulesetSnapshot, RulesetRepository]:
    """The snapshot every process of this instance serves, and its repository (StartupError when there is none
    to serve, or the store's versions do not load)."""
    if decision_log is None:
        return load_rulesets(root, include_drafts=include_drafts)
    store = decision_log.rulesets()
    if store.is_empty():
        seed(store, root, include_drafts=include_drafts)
    else:
        warn_unseeded(store, root)
    snapshot = store.snapshot()
    try:
        repository = RulesetRepository.from_snapshot(snapshot, include_drafts=include_drafts)
    except RulesetInvalid as exc:
        raise StartupError("decision_log", f"the ruleset versions in the store do not load: {exc.diagnostics[0]}",
                           "run `regelmotor ruleset export` and look at them; VerifyLog tells whether they were "
                           "altered") from None
    if not repository.versions:
        raise StartupError("decision_log", "the store holds no ruleset version to serve",
                           "import some with `regelmotor ruleset import DIR`")
    return snapshot, repository


def warn_unseeded(store: RulesetStore, root: Path) -> None:
    """One warning naming the directory's versions the seeded store lacks: the store is what is served, so a
    version added to the directory later is ignored until it is imported. Read from the file names alone (the
    repository requires <name>/<version>.yaml), so a start parses nothing more."""
    if not root.is_dir():
        return
    stored = {state.key for state in store.states()}
    missing = [key for key in sorted(f"{path.parent.name}@{path.name.removesuffix('.yaml')}"
                                     for path in root.glob("*/*.yaml") if not path.name.endswith(CASES_SUFFIX))
               if key not in stored]
    if missing:
        log.warning("ruleset versions in the directory are not in the store and are not served",
                    extra={"rulesets": str(root), "versions": missing,
                           "fix": f"regelmotor ruleset import {root}, then have another person approve each "
                                  "(import stores them as proposed: regelmotor ruleset approve NAME VERSION "
                                  "--sha256 ...)"})


def seed(store: RulesetStore, root: Path, *, include_drafts: bool) -> None:
    """Import the directory's versions, and its retirements, into an empty store (the first start)."""
    _, repository = load_rulesets(root, include_drafts=include_drafts)
    try:
        stored = store.import_versions(directory_versions(repository), SEED_ACTOR, str(root), repository.retired)
    except RegelmotorError as exc:
        raise StartupError("rulesets", f"the versions in {root} cannot seed the store: {exc}",
                           "fix them (`regelmotor ruleset validate`)") from None
    log.info("ruleset store seeded", extra={"rulesets": str(root), "versions": len(stored)})
