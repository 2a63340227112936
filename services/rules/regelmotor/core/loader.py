"""Load one ruleset version file into the validated, compiled model, or report every problem with its line.

The file format is documented in docs/ruleset-format.md. Problems are collected, not raised one at a
time, so an author sees all of them in one run. Loading also compiles the ruleset for durable_rules
(pure Python; nothing is registered), so a source that loads is a source the engine can run.

Sources come from callers too, so whatever the text, `load_ruleset_text` raises RulesetInvalid
(every diagnostic with a line and column) and nothing else, within the limits of `yamlsource`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from . import shapes
from .compiler import compile_ruleset
from .declarations import (
    Declared,
    Reporter,
    read_facts,
    read_hjemler,
    read_metadata,
    read_outcomes,
    read_parameters,
    read_tables,
)
from .errors import CompileError, Diagnostic, RulesetInvalid, SourceProblem
from .hashing import canonical_sha256
from .logic import check_cycles, read_constraints, read_derived, read_rules
from .model import Ruleset
from .yamlsource import Located, load_located, read_source
from .yamlsource import Path as YPath


def load_ruleset_file(path: str | Path) -> Ruleset:
    file = Path(path)
    try:
        text = read_source(file)
    except SourceProblem as exc:
        raise RulesetInvalid([Diagnostic(str(file), exc.line, exc.column, str(exc))]) from None
    return load_ruleset_text(text, str(file))


def load_ruleset_text(text: str, path: str = "<ruleset>") -> Ruleset:
    builder: _Builder | None = None
    try:
        builder = _Builder(path, load_located(text, allow_aliases=False))
        return builder.build()
    except RulesetInvalid:
        raise
    except SourceProblem as exc:
        raise RulesetInvalid([Diagnostic(path, exc.line, exc.column, str(exc))]) from None
    except Exception as exc:
        # A bug of ours, not the author's: still answer with a place, so a caller's request is refused
        # (INVALID_ARGUMENT) instead of failing the process; the cause stays chained for the logs.
        line, column = builder.located.where(builder.section) if builder else (1, 1)
        raise RulesetInvalid([Diagnostic(path, line, column, (
            f"regelmotor could not check this part of the source ({type(exc).__name__}); "
            "this is a bug in regelmotor, please report it"))]) from exc


class _Builder:
    def __init__(self, path: str, located: Located) -> None:
        self.located = located
        self.report = Reporter(path, located)
        self.path = path
        self.section: YPath = ()  # what is being read, for the report of an unexpected failure

    def build(self) -> Ruleset:
        doc = shapes.check(self.located.data, shapes.RULESET, (), "", self.report.error)
        if doc is None:
            raise RulesetInvalid(self.report.all())
        d = Declared(self.report)
        self.section = ("name",)
        meta = read_metadata(d, doc)
        # Tables before facts and parameters: an enum may take its values from a table's keys.
        for section, read in (("hjemler", read_hjemler), ("tables", read_tables), ("facts", read_facts),
                              ("parameters", read_parameters), ("outcomes", read_outcomes)):
            self.section = (section,)
            read(d, doc)
        self.section = ("derived",)
        derived = read_derived(d, doc)
        self.section = ("rules",)
        rules = read_rules(d, doc)
        self.section = ("constraints",)
        constraints = read_constraints(d, doc, derived)
        self.section = ("derived",)
        check_cycles(d, derived, rules)
        if self.report.diagnostics or meta is None:
            raise RulesetInvalid(self.report.all())
        sha, canonical = canonical_sha256(self.located.data)
        ruleset = Ruleset(meta, d.hjemler, d.facts, d.parameters, d.tables, derived, tuple(rules), d.outcomes,
                          tuple(constraints), sha, self.path, canonical, tuple(self.report.warnings))
        self.section = ("rules",)
        self._compile(ruleset, doc)
        return ruleset

    def _compile(self, ruleset: Ruleset, doc: dict[str, Any]) -> None:
        try:
            compile_ruleset(ruleset)
        except CompileError as exc:
            self.report.error(self._place(exc, ruleset, doc), f"durable_rules cannot run this ruleset: {exc}")
            raise RulesetInvalid(self.report.all()) from None

    @staticmethod
    def _place(exc: CompileError, ruleset: Ruleset, doc: dict[str, Any]) -> YPath:
        if exc.rule is not None:
            for section in ("rules", "constraints"):
                for index, spec in enumerate(doc.get(section, [])):
                    if isinstance(spec, dict) and spec.get("id") == exc.rule:
                        return (section, index)
        for section in ("facts", "derived", "outcomes"):
            if exc.name is not None and exc.name in doc.get(section, {}):
                return (section, exc.name)
        return ("rules",)


__all__ = ["load_ruleset_file", "load_ruleset_text"]
