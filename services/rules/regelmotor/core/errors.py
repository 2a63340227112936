"""Errors the engine library raises. Each carries what a caller needs to act on it.

Every error the library raises on purpose is a kind of `RegelmotorError`; the boundaries map them
(gRPC: regelmotor.server.errors.error_result; CLI: regelmotor.cli.main.main):

    RegelmotorError                     gRPC                  CLI exit
    ├── RulesetInvalid                  INVALID_ARGUMENT *    1, one `file:line:column: message` per line
    │     a ruleset or cases source (or a set of versions) has problems: every Diagnostic has a line
    │     and a column. load_ruleset_text / load_ruleset_file / parse_cases raise nothing else, for
    │     any input text.
    ├── SourceProblem                   (never escapes)       -
    │     one located problem while reading a source (YAML limits, bad YAML); the readers turn it
    │     into a RulesetInvalid diagnostic.
    │     └── YamlProblem (core.yamlsource): not valid YAML, or beyond the limits of a source
    ├── CompileError                    (never escapes)       -
    │     a valid ruleset that durable_rules cannot run safely; loading compiles, so the loader
    │     reports it as a RulesetInvalid diagnostic at the rule or name concerned.
    ├── InvalidFacts                    INVALID_ARGUMENT      2
    ├── InvalidIdentityNumber           INVALID_ARGUMENT      -   (core.identity; the field is national_id)
    ├── RulesetNotFound                 NOT_FOUND             2
    ├── VersionNotFound                 NOT_FOUND             2
    │     └── VersionNotPublishedThen   NOT_FOUND             2   (pinned, asked as known at a moment before it
    │                                                                  was published)
    ├── NoVersionInForce                FAILED_PRECONDITION   2
    ├── ParameterValueMissing           FAILED_PRECONDITION   2
    ├── VersionRetired                  FAILED_PRECONDITION   2   (a retired version, asked for a date it no
    │                                                                  longer covers)
    ├── LifecycleRefused                FAILED_PRECONDITION   3   (a ruleset lifecycle step the store's state
    │     │                                                        does not allow: ErrorInfo.reason says which)
    │     └── VersionTaken              ALREADY_EXISTS        3   (a version string already used)
    ├── OutcomeConflict                 INTERNAL              2   (the ruleset's rules disagree)
    └── EngineFailure                   INTERNAL              2   (durable_rules failed: never the caller's fault)

    * ValidateRuleset and TestRuleset answer a RulesetInvalid inside their response (`diagnostics`; a valid
      source's warnings, `Ruleset.warnings`, come back there too, with severity warning),
      DiffRulesets as INVALID_ARGUMENT with one BadRequest field violation `source:<line>:<column>`
      per diagnostic.

Inside the loader, ExpressionSyntaxError, ExpressionTypeError and SignatureError (ValueErrors of the
expression modules) only carry a message to the loader, which turns each into a diagnostic. Anything
else is a bug: the gRPC boundary answers INTERNAL without its text, the CLI shows a traceback.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum


class RegelmotorError(Exception):
    """Base class of every error the library raises on purpose."""


class Severity(StrEnum):
    ERROR = "error"  # the source cannot be used
    WARNING = "warning"  # it can, but something in it is likely to mislead (see Ruleset.warnings)


@dataclass(frozen=True)
class Diagnostic:
    """One problem in a ruleset file, placed so a policy author can find it."""

    file: str
    line: int
    column: int
    message: str
    severity: Severity = Severity.ERROR

    def __str__(self) -> str:
        warning = "warning: " if self.severity is Severity.WARNING else ""
        return f"{self.file}:{self.line}:{self.column}: {warning}{self.message}"


class RulesetInvalid(RegelmotorError):
    """A ruleset file (or a set of versions) has one or more errors."""

    def __init__(self, diagnostics: list[Diagnostic]) -> None:
        self.diagnostics = diagnostics
        super().__init__("\n".join(str(d) for d in diagnostics))


@dataclass(frozen=True)
class FieldViolation:
    """One bad input fact: its path (``individuelle_forhold[2]``) and why it was refused."""

    field: str
    reason: str

    def __str__(self) -> str:
        return f"{self.field}: {self.reason}"


class SourceProblem(RegelmotorError):
    """One problem at a place in a source text; the readers turn it into a RulesetInvalid diagnostic."""

    def __init__(self, message: str, line: int, column: int) -> None:
        super().__init__(message)
        self.line = line
        self.column = column


class CompileError(RegelmotorError):
    """A valid ruleset that exceeds what durable_rules can run safely.

    `rule` (a rule or constraint id) or `name` (a fact, derived value or outcome) says where the loader
    places it."""

    def __init__(self, message: str, *, rule: str | None = None, name: str | None = None) -> None:
        super().__init__(message)
        self.rule = rule
        self.name = name


class InvalidFacts(RegelmotorError):
    def __init__(self, violations: list[FieldViolation]) -> None:
        self.violations = violations
        super().__init__("invalid facts: " + "; ".join(str(v) for v in violations))


class RulesetNotFound(RegelmotorError):
    def __init__(self, name: str, known: list[str]) -> None:
        self.name = name
        self.known = known
        super().__init__(f"no ruleset named {name!r}; known rulesets: {', '.join(known) or 'none'}")


class VersionNotFound(RegelmotorError):
    def __init__(self, name: str, version: str, known: list[str]) -> None:
        self.name = name
        self.version = version
        self.known = known
        super().__init__(f"ruleset {name!r} has no version {version!r}; versions: {', '.join(known)}")


class VersionNotPublishedThen(VersionNotFound):
    """A pinned version asked for "as known at" a moment before it was published."""

    def __init__(self, name: str, version: str, known_at: str, published_at: str) -> None:
        RegelmotorError.__init__(self, f"{name}@{version} was published at {published_at}, after known_at "
                                       f"{known_at}: as known then, there was no such version")
        self.name = name
        self.version = version
        self.known = [version]


class NoVersionInForce(RegelmotorError):
    def __init__(self, name: str, selecting_fact: str, on: date, periods: list[str]) -> None:
        self.name = name
        self.selecting_fact = selecting_fact
        self.on = on
        super().__init__(
            f"no version of {name!r} is in force on {on.isoformat()} (selected by {selecting_fact}); "
            f"versions cover: {'; '.join(periods)}"
        )


class ParameterValueMissing(RegelmotorError):
    def __init__(self, parameter: str, on: date, note: str | None = None) -> None:
        self.parameter = parameter
        self.on = on
        self.note = note
        super().__init__(f"parameter {parameter!r} has no value for {on.isoformat()}" + (f" ({note})" if note else ""))


@dataclass
class Conflict:
    outcome: str
    values: dict[str, object] = field(default_factory=dict)  # rule id -> value


class OutcomeConflict(RegelmotorError):
    """Two rules gave different values where the outcome's combine policy does not allow it."""

    def __init__(self, conflict: Conflict, policy: str) -> None:
        self.conflict = conflict
        parts = ", ".join(f"{rule} gives {value!r}" for rule, value in conflict.values.items())
        super().__init__(f"conflicting values for outcome {conflict.outcome!r} under policy {policy}: {parts}")


class EngineFailure(RegelmotorError):
    """durable_rules failed or disagreed with the compiled explanation: never the caller's fault."""


class VersionRetired(RegelmotorError):
    """A retired version answers only pinned requests for dates before it was retired (so replays keep working)."""

    def __init__(self, name: str, version: str, retired_from: date, on: date) -> None:
        self.name = name
        self.version = version
        self.retired_from = retired_from
        self.on = on
        super().__init__(f"{name}@{version} is retired from {retired_from.isoformat()}: it answers only pinned "
                         f"requests for dates before that, not {on.isoformat()}")


class LifecycleRefused(RegelmotorError):
    """A step of a ruleset version's lifecycle (propose, approve, reject, retire, import) that the stored state
    does not allow. `reason` is a stable UPPER_SNAKE code (FOUR_EYES, SHA256_MISMATCH, TIMELINE, ...), `metadata`
    what the message names; nothing was stored."""

    def __init__(self, reason: str, message: str, **metadata: str) -> None:
        self.reason = reason
        self.metadata = metadata
        super().__init__(message)


class VersionTaken(LifecycleRefused):
    """The version string is already used for this ruleset (in any state: a version is never reused)."""

    def __init__(self, name: str, version: str, state: str) -> None:
        super().__init__("VERSION_EXISTS", f"{name}@{version} already exists ({state}); give the new text a new "
                         "version", ruleset=name, version=version, state=state)
