"""The parsed, validated form of a ruleset version: plain immutable dataclasses.

Everything here has passed the loader's checks; the compiler and evaluator trust it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from typing import Any

from .errors import Diagnostic, ParameterValueMissing
from .expressions import Expr
from .limits import DEFAULT_MAX_ITEMS, DEFAULT_MAX_LENGTH
from .types import Kind, ValueType


class Status(StrEnum):
    DRAFT = "draft"
    PUBLISHED = "published"


class Combine(StrEnum):
    """How the values that several fired rules give one outcome field are combined."""

    UNIQUE = "unique"  # all fired rules must agree; disagreement is a conflict
    PRIORITY = "priority"  # the highest `prioritet` wins; a tie with different values is a conflict
    ANY = "any"  # bool: true if any fired rule says true
    ALL = "all"  # bool: true only if every fired rule says true
    MIN = "min"
    MAX = "max"
    COLLECT = "collect"  # list of the values, in rule order, without duplicates


@dataclass(frozen=True)
class Hjemmel:
    """A structured legal reference, pinned to the version of the text it cites."""

    id: str
    kilde: str  # e.g. LOV-1999-07-02-63, FOR-2000-12-01-1208, or a white paper
    navn: str | None = None
    kapittel: str | None = None
    paragraf: str | None = None
    ledd: int | None = None
    punktum: int | None = None
    bokstav: str | None = None
    i_kraft: date | None = None
    url: str | None = None
    verified: bool = False
    merknad: str | None = None

    def cite(self) -> str:
        parts = [self.navn or self.kilde]
        if self.kapittel:
            parts.append(f"kap. {self.kapittel}")
        if self.paragraf:
            parts.append(f"§ {self.paragraf}")
        if self.ledd:
            parts.append(f"{self.ledd}. ledd")
        if self.punktum:
            parts.append(f"{self.punktum}. punktum")
        if self.bokstav:
            parts.append(f"bokstav {self.bokstav}")
        text = " ".join(parts)
        return text if self.verified else text + " (ikke verifisert)"


@dataclass(frozen=True)
class FactSpec:
    name: str
    type: ValueType
    required: bool
    default: Any
    description: str
    minimum: Any = None
    maximum: Any = None
    pattern: str | None = None
    line: int = 0
    max_items: int | None = None  # as declared; None: the engine's default
    max_length: int | None = None  # as declared; None: the engine's default

    @property
    def items_limit(self) -> int | None:
        """The most items a list fact accepts (None for a fact that is not a list)."""
        if self.type.kind is not Kind.LIST:
            return None
        return self.max_items if self.max_items is not None else DEFAULT_MAX_ITEMS

    @property
    def length_limit(self) -> int | None:
        """The most characters a text fact, or each text of a list of texts, accepts (None for other types)."""
        item = self.type.item if self.type.kind is Kind.LIST else self.type
        if item is None or item.kind is not Kind.STRING:
            return None
        return self.max_length if self.max_length is not None else DEFAULT_MAX_LENGTH


@dataclass(frozen=True)
class ParameterValue:
    gyldig_fra: date
    value: Any  # None: explicitly no value from this date (a declared gap)
    note: str | None = None
    # The value rests on a secondary source (named here) until a primary one is found: every decision that reads
    # it says so in its explanation (ParameterTrace.sekundaerkilde).
    sekundaerkilde: str | None = None


@dataclass(frozen=True)
class Parameter:
    name: str
    type: ValueType
    unit: str
    description: str
    source: str
    values: tuple[ParameterValue, ...]  # sorted by gyldig_fra
    hjemmel: tuple[str, ...] = ()

    def value_on(self, day: date) -> ParameterValue:
        """The value in force on `day`; a missing value is an error, never a default."""
        found: ParameterValue | None = None
        for candidate in self.values:
            if candidate.gyldig_fra <= day:
                found = candidate
            else:
                break
        if found is None or found.value is None:
            raise ParameterValueMissing(self.name, day, found.note if found else None)
        return found


@dataclass(frozen=True)
class Table:
    """A data table keyed by one column, e.g. the prioriteringsveileder rows."""

    name: str
    key: str
    columns: dict[str, ValueType]
    rows: dict[str, dict[str, Any]]  # key -> row (every column present; None where empty)
    description: str = ""
    source: str = ""


@dataclass(frozen=True)
class Derived:
    name: str
    expr: Expr
    text: str
    type: ValueType
    description: str
    reads: tuple[str, ...]  # names of facts, derived values and outcomes it reads
    line: int = 0


@dataclass(frozen=True)
class Rule:
    id: str
    title: str
    hjemmel: tuple[str, ...]
    condition: Expr
    condition_text: str
    effects: dict[str, Expr]  # outcome field -> literal or name
    unntak_fra: str | None = None
    prioritet: int = 0
    manuell_vurdering: str | None = None  # a reason: firing means manual review is needed
    begrunnelse: str | None = None
    line: int = 0


@dataclass(frozen=True)
class OutcomeSpec:
    name: str
    type: ValueType
    default: Any
    combine: Combine
    description: str
    line: int = 0
    internal: bool = False  # an intermediate result: explained, but not part of the public outcome


@dataclass(frozen=True)
class Constraint:
    """A check across input facts that schema types cannot express; when it holds, the input is refused."""

    id: str
    condition: Expr
    condition_text: str
    field: str  # the fact to name in the error
    message: str
    line: int = 0


@dataclass(frozen=True)
class Metadata:
    name: str
    version: str
    title: str
    status: Status
    gyldig_fra: date
    gyldig_til: date | None  # inclusive; None: open-ended
    selected_by: str | None  # a date fact; None: the evaluation's as_of
    allow_gap_before: bool = False
    description: str = ""
    notes: tuple[str, ...] = ()
    headline: str | None = None  # the outcome that sums up a decision (span attributes, summaries); checked
    # A correction of a published version of the same ruleset: it decides in that version's place for the days
    # it covers once it is published, without pretending the law changed (regelmotor.core.timeline).
    supersedes: str | None = None
    correction_reason: str = ""
    lines: dict[str, int] = field(default_factory=dict, compare=False)  # key -> line in the file


@dataclass(frozen=True)
class Ruleset:
    meta: Metadata
    hjemler: dict[str, Hjemmel]
    facts: dict[str, FactSpec]
    parameters: dict[str, Parameter]
    tables: dict[str, Table]
    derived: dict[str, Derived]  # in evaluation order (dependencies first)
    rules: tuple[Rule, ...]
    outcomes: dict[str, OutcomeSpec]
    constraints: tuple[Constraint, ...]
    sha256: str
    source_path: str
    canonical: dict[str, Any] = field(repr=False, default_factory=dict)
    # What the loader warns about in a source that loads (a title stating a number a parameter holds).
    warnings: tuple[Diagnostic, ...] = field(default=(), repr=False, compare=False)

    @property
    def key(self) -> str:
        return f"{self.meta.name}@{self.meta.version}"

    def unverified_hjemler(self) -> list[Hjemmel]:
        """The legal references marked `verified: false`, in file order: what an approver acknowledges before such
        a version is published."""
        return [hjemmel for hjemmel in self.hjemler.values() if not hjemmel.verified]

    def rule(self, rule_id: str) -> Rule:
        for rule in self.rules:
            if rule.id == rule_id:
                return rule
        raise KeyError(rule_id)
