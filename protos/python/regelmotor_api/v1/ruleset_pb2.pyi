from google.protobuf import struct_pb2 as _struct_pb2
from regelmotor_api.v1 import audit_pb2 as _audit_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class DiagnosticSeverity(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DIAGNOSTIC_SEVERITY_UNSPECIFIED: _ClassVar[DiagnosticSeverity]
    DIAGNOSTIC_SEVERITY_ERROR: _ClassVar[DiagnosticSeverity]
    DIAGNOSTIC_SEVERITY_WARNING: _ClassVar[DiagnosticSeverity]
DIAGNOSTIC_SEVERITY_UNSPECIFIED: DiagnosticSeverity
DIAGNOSTIC_SEVERITY_ERROR: DiagnosticSeverity
DIAGNOSTIC_SEVERITY_WARNING: DiagnosticSeverity

class ListRulesetsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListRulesetsResponse(_message.Message):
    __slots__ = ("rulesets", "reload_problem")
    RULESETS_FIELD_NUMBER: _ClassVar[int]
    RELOAD_PROBLEM_FIELD_NUMBER: _ClassVar[int]
    rulesets: _containers.RepeatedCompositeFieldContainer[RulesetSummary]
    reload_problem: str
    def __init__(self, rulesets: _Optional[_Iterable[_Union[RulesetSummary, _Mapping]]] = ..., reload_problem: _Optional[str] = ...) -> None: ...

class RulesetSummary(_message.Message):
    __slots__ = ("name", "selected_by", "versions")
    NAME_FIELD_NUMBER: _ClassVar[int]
    SELECTED_BY_FIELD_NUMBER: _ClassVar[int]
    VERSIONS_FIELD_NUMBER: _ClassVar[int]
    name: str
    selected_by: str
    versions: _containers.RepeatedCompositeFieldContainer[VersionInfo]
    def __init__(self, name: _Optional[str] = ..., selected_by: _Optional[str] = ..., versions: _Optional[_Iterable[_Union[VersionInfo, _Mapping]]] = ...) -> None: ...

class VersionInfo(_message.Message):
    __slots__ = ("version", "title", "status", "gyldig_fra", "gyldig_til", "sha256", "state", "supersedes", "correction_reason", "published_at", "corrected_by")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    GYLDIG_FRA_FIELD_NUMBER: _ClassVar[int]
    GYLDIG_TIL_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    SUPERSEDES_FIELD_NUMBER: _ClassVar[int]
    CORRECTION_REASON_FIELD_NUMBER: _ClassVar[int]
    PUBLISHED_AT_FIELD_NUMBER: _ClassVar[int]
    CORRECTED_BY_FIELD_NUMBER: _ClassVar[int]
    version: str
    title: str
    status: str
    gyldig_fra: str
    gyldig_til: str
    sha256: str
    state: str
    supersedes: str
    correction_reason: str
    published_at: str
    corrected_by: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, version: _Optional[str] = ..., title: _Optional[str] = ..., status: _Optional[str] = ..., gyldig_fra: _Optional[str] = ..., gyldig_til: _Optional[str] = ..., sha256: _Optional[str] = ..., state: _Optional[str] = ..., supersedes: _Optional[str] = ..., correction_reason: _Optional[str] = ..., published_at: _Optional[str] = ..., corrected_by: _Optional[_Iterable[str]] = ...) -> None: ...

class GetRulesetRequest(_message.Message):
    __slots__ = ("name", "version")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: str
    def __init__(self, name: _Optional[str] = ..., version: _Optional[str] = ...) -> None: ...

class GetRulesetResponse(_message.Message):
    __slots__ = ("ruleset", "version", "input_schema", "outcome_schema", "source", "cases", "served")
    RULESET_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    INPUT_SCHEMA_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_SCHEMA_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    CASES_FIELD_NUMBER: _ClassVar[int]
    SERVED_FIELD_NUMBER: _ClassVar[int]
    ruleset: RulesetSummary
    version: VersionInfo
    input_schema: _struct_pb2.Struct
    outcome_schema: _struct_pb2.Struct
    source: str
    cases: str
    served: bool
    def __init__(self, ruleset: _Optional[_Union[RulesetSummary, _Mapping]] = ..., version: _Optional[_Union[VersionInfo, _Mapping]] = ..., input_schema: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., outcome_schema: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., source: _Optional[str] = ..., cases: _Optional[str] = ..., served: _Optional[bool] = ...) -> None: ...

class Diagnostic(_message.Message):
    __slots__ = ("line", "column", "message", "severity")
    LINE_FIELD_NUMBER: _ClassVar[int]
    COLUMN_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    SEVERITY_FIELD_NUMBER: _ClassVar[int]
    line: int
    column: int
    message: str
    severity: DiagnosticSeverity
    def __init__(self, line: _Optional[int] = ..., column: _Optional[int] = ..., message: _Optional[str] = ..., severity: _Optional[_Union[DiagnosticSeverity, str]] = ...) -> None: ...

class ValidateRulesetRequest(_message.Message):
    __slots__ = ("source",)
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    source: str
    def __init__(self, source: _Optional[str] = ...) -> None: ...

class ValidateRulesetResponse(_message.Message):
    __slots__ = ("valid", "diagnostics", "name", "version", "sha256")
    VALID_FIELD_NUMBER: _ClassVar[int]
    DIAGNOSTICS_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    valid: bool
    diagnostics: _containers.RepeatedCompositeFieldContainer[Diagnostic]
    name: str
    version: str
    sha256: str
    def __init__(self, valid: _Optional[bool] = ..., diagnostics: _Optional[_Iterable[_Union[Diagnostic, _Mapping]]] = ..., name: _Optional[str] = ..., version: _Optional[str] = ..., sha256: _Optional[str] = ...) -> None: ...

class TestRulesetRequest(_message.Message):
    __slots__ = ("source", "cases", "coverage")
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    CASES_FIELD_NUMBER: _ClassVar[int]
    COVERAGE_FIELD_NUMBER: _ClassVar[int]
    source: str
    cases: str
    coverage: bool
    def __init__(self, source: _Optional[str] = ..., cases: _Optional[str] = ..., coverage: _Optional[bool] = ...) -> None: ...

class CaseResult(_message.Message):
    __slots__ = ("name", "line", "passed", "failures", "fired")
    NAME_FIELD_NUMBER: _ClassVar[int]
    LINE_FIELD_NUMBER: _ClassVar[int]
    PASSED_FIELD_NUMBER: _ClassVar[int]
    FAILURES_FIELD_NUMBER: _ClassVar[int]
    FIRED_FIELD_NUMBER: _ClassVar[int]
    name: str
    line: int
    passed: bool
    failures: _containers.RepeatedScalarFieldContainer[str]
    fired: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, name: _Optional[str] = ..., line: _Optional[int] = ..., passed: _Optional[bool] = ..., failures: _Optional[_Iterable[str]] = ..., fired: _Optional[_Iterable[str]] = ...) -> None: ...

class TestRulesetResponse(_message.Message):
    __slots__ = ("passed", "failed", "results", "diagnostics", "coverage")
    PASSED_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    DIAGNOSTICS_FIELD_NUMBER: _ClassVar[int]
    COVERAGE_FIELD_NUMBER: _ClassVar[int]
    passed: int
    failed: int
    results: _containers.RepeatedCompositeFieldContainer[CaseResult]
    diagnostics: _containers.RepeatedCompositeFieldContainer[Diagnostic]
    coverage: CaseCoverage
    def __init__(self, passed: _Optional[int] = ..., failed: _Optional[int] = ..., results: _Optional[_Iterable[_Union[CaseResult, _Mapping]]] = ..., diagnostics: _Optional[_Iterable[_Union[Diagnostic, _Mapping]]] = ..., coverage: _Optional[_Union[CaseCoverage, _Mapping]] = ...) -> None: ...

class CaseCoverage(_message.Message):
    __slots__ = ("rules_not_fired", "exceptions_not_fired", "values_not_expected", "cases")
    RULES_NOT_FIRED_FIELD_NUMBER: _ClassVar[int]
    EXCEPTIONS_NOT_FIRED_FIELD_NUMBER: _ClassVar[int]
    VALUES_NOT_EXPECTED_FIELD_NUMBER: _ClassVar[int]
    CASES_FIELD_NUMBER: _ClassVar[int]
    rules_not_fired: _containers.RepeatedScalarFieldContainer[str]
    exceptions_not_fired: _containers.RepeatedScalarFieldContainer[str]
    values_not_expected: _containers.RepeatedCompositeFieldContainer[UntestedValues]
    cases: int
    def __init__(self, rules_not_fired: _Optional[_Iterable[str]] = ..., exceptions_not_fired: _Optional[_Iterable[str]] = ..., values_not_expected: _Optional[_Iterable[_Union[UntestedValues, _Mapping]]] = ..., cases: _Optional[int] = ...) -> None: ...

class UntestedValues(_message.Message):
    __slots__ = ("outcome", "values")
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    outcome: str
    values: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, outcome: _Optional[str] = ..., values: _Optional[_Iterable[str]] = ...) -> None: ...

class DiffRulesetsRequest(_message.Message):
    __slots__ = ("name", "version_a", "version_b", "source_a", "source_b")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_A_FIELD_NUMBER: _ClassVar[int]
    VERSION_B_FIELD_NUMBER: _ClassVar[int]
    SOURCE_A_FIELD_NUMBER: _ClassVar[int]
    SOURCE_B_FIELD_NUMBER: _ClassVar[int]
    name: str
    version_a: str
    version_b: str
    source_a: str
    source_b: str
    def __init__(self, name: _Optional[str] = ..., version_a: _Optional[str] = ..., version_b: _Optional[str] = ..., source_a: _Optional[str] = ..., source_b: _Optional[str] = ...) -> None: ...

class DiffRulesetsResponse(_message.Message):
    __slots__ = ("metadata", "rules_added", "rules_removed", "rules_changed", "parameters", "facts", "derived", "outcomes", "tables", "hjemler", "constraints", "lines")
    METADATA_FIELD_NUMBER: _ClassVar[int]
    RULES_ADDED_FIELD_NUMBER: _ClassVar[int]
    RULES_REMOVED_FIELD_NUMBER: _ClassVar[int]
    RULES_CHANGED_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    FACTS_FIELD_NUMBER: _ClassVar[int]
    DERIVED_FIELD_NUMBER: _ClassVar[int]
    OUTCOMES_FIELD_NUMBER: _ClassVar[int]
    TABLES_FIELD_NUMBER: _ClassVar[int]
    HJEMLER_FIELD_NUMBER: _ClassVar[int]
    CONSTRAINTS_FIELD_NUMBER: _ClassVar[int]
    LINES_FIELD_NUMBER: _ClassVar[int]
    metadata: _containers.RepeatedScalarFieldContainer[str]
    rules_added: _containers.RepeatedScalarFieldContainer[str]
    rules_removed: _containers.RepeatedScalarFieldContainer[str]
    rules_changed: _containers.RepeatedCompositeFieldContainer[RuleChange]
    parameters: _containers.RepeatedScalarFieldContainer[str]
    facts: _containers.RepeatedScalarFieldContainer[str]
    derived: _containers.RepeatedScalarFieldContainer[str]
    outcomes: _containers.RepeatedScalarFieldContainer[str]
    tables: _containers.RepeatedScalarFieldContainer[str]
    hjemler: _containers.RepeatedScalarFieldContainer[str]
    constraints: _containers.RepeatedScalarFieldContainer[str]
    lines: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, metadata: _Optional[_Iterable[str]] = ..., rules_added: _Optional[_Iterable[str]] = ..., rules_removed: _Optional[_Iterable[str]] = ..., rules_changed: _Optional[_Iterable[_Union[RuleChange, _Mapping]]] = ..., parameters: _Optional[_Iterable[str]] = ..., facts: _Optional[_Iterable[str]] = ..., derived: _Optional[_Iterable[str]] = ..., outcomes: _Optional[_Iterable[str]] = ..., tables: _Optional[_Iterable[str]] = ..., hjemler: _Optional[_Iterable[str]] = ..., constraints: _Optional[_Iterable[str]] = ..., lines: _Optional[_Iterable[str]] = ...) -> None: ...

class RuleChange(_message.Message):
    __slots__ = ("rule_id", "changes")
    RULE_ID_FIELD_NUMBER: _ClassVar[int]
    CHANGES_FIELD_NUMBER: _ClassVar[int]
    rule_id: str
    changes: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, rule_id: _Optional[str] = ..., changes: _Optional[_Iterable[str]] = ...) -> None: ...

class AnalyseImpactRequest(_message.Message):
    __slots__ = ("source", "stored", "ruleset", "filter", "formaal", "max_examples", "as_of_from", "as_of_to", "known_at")
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    STORED_FIELD_NUMBER: _ClassVar[int]
    RULESET_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    FORMAAL_FIELD_NUMBER: _ClassVar[int]
    MAX_EXAMPLES_FIELD_NUMBER: _ClassVar[int]
    AS_OF_FROM_FIELD_NUMBER: _ClassVar[int]
    AS_OF_TO_FIELD_NUMBER: _ClassVar[int]
    KNOWN_AT_FIELD_NUMBER: _ClassVar[int]
    source: str
    stored: VersionRef
    ruleset: str
    filter: _audit_pb2.DecisionFilter
    formaal: str
    max_examples: int
    as_of_from: str
    as_of_to: str
    known_at: str
    def __init__(self, source: _Optional[str] = ..., stored: _Optional[_Union[VersionRef, _Mapping]] = ..., ruleset: _Optional[str] = ..., filter: _Optional[_Union[_audit_pb2.DecisionFilter, _Mapping]] = ..., formaal: _Optional[str] = ..., max_examples: _Optional[int] = ..., as_of_from: _Optional[str] = ..., as_of_to: _Optional[str] = ..., known_at: _Optional[str] = ...) -> None: ...

class VersionRef(_message.Message):
    __slots__ = ("name", "version")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: str
    def __init__(self, name: _Optional[str] = ..., version: _Optional[str] = ...) -> None: ...

class AnalyseImpactResponse(_message.Message):
    __slots__ = ("progress", "report")
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    REPORT_FIELD_NUMBER: _ClassVar[int]
    progress: ImpactProgress
    report: ImpactReport
    def __init__(self, progress: _Optional[_Union[ImpactProgress, _Mapping]] = ..., report: _Optional[_Union[ImpactReport, _Mapping]] = ...) -> None: ...

class ImpactProgress(_message.Message):
    __slots__ = ("done", "total")
    DONE_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    done: int
    total: int
    def __init__(self, done: _Optional[int] = ..., total: _Optional[int] = ...) -> None: ...

class ImpactReport(_message.Message):
    __slots__ = ("ruleset", "candidate_version", "candidate_sha256", "analysed", "changed", "refused", "outcomes", "refusals", "seconds", "known_at", "decided")
    RULESET_FIELD_NUMBER: _ClassVar[int]
    CANDIDATE_VERSION_FIELD_NUMBER: _ClassVar[int]
    CANDIDATE_SHA256_FIELD_NUMBER: _ClassVar[int]
    ANALYSED_FIELD_NUMBER: _ClassVar[int]
    CHANGED_FIELD_NUMBER: _ClassVar[int]
    REFUSED_FIELD_NUMBER: _ClassVar[int]
    OUTCOMES_FIELD_NUMBER: _ClassVar[int]
    REFUSALS_FIELD_NUMBER: _ClassVar[int]
    SECONDS_FIELD_NUMBER: _ClassVar[int]
    KNOWN_AT_FIELD_NUMBER: _ClassVar[int]
    DECIDED_FIELD_NUMBER: _ClassVar[int]
    ruleset: str
    candidate_version: str
    candidate_sha256: str
    analysed: int
    changed: int
    refused: int
    outcomes: _containers.RepeatedCompositeFieldContainer[OutcomeImpact]
    refusals: _containers.RepeatedCompositeFieldContainer[ImpactExample]
    seconds: float
    known_at: str
    decided: int
    def __init__(self, ruleset: _Optional[str] = ..., candidate_version: _Optional[str] = ..., candidate_sha256: _Optional[str] = ..., analysed: _Optional[int] = ..., changed: _Optional[int] = ..., refused: _Optional[int] = ..., outcomes: _Optional[_Iterable[_Union[OutcomeImpact, _Mapping]]] = ..., refusals: _Optional[_Iterable[_Union[ImpactExample, _Mapping]]] = ..., seconds: _Optional[float] = ..., known_at: _Optional[str] = ..., decided: _Optional[int] = ...) -> None: ...

class OutcomeImpact(_message.Message):
    __slots__ = ("field", "kind", "changed", "transitions", "sum_before", "sum_after", "examples")
    FIELD_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    CHANGED_FIELD_NUMBER: _ClassVar[int]
    TRANSITIONS_FIELD_NUMBER: _ClassVar[int]
    SUM_BEFORE_FIELD_NUMBER: _ClassVar[int]
    SUM_AFTER_FIELD_NUMBER: _ClassVar[int]
    EXAMPLES_FIELD_NUMBER: _ClassVar[int]
    field: str
    kind: str
    changed: int
    transitions: _containers.RepeatedCompositeFieldContainer[ValueTransition]
    sum_before: str
    sum_after: str
    examples: _containers.RepeatedCompositeFieldContainer[ImpactExample]
    def __init__(self, field: _Optional[str] = ..., kind: _Optional[str] = ..., changed: _Optional[int] = ..., transitions: _Optional[_Iterable[_Union[ValueTransition, _Mapping]]] = ..., sum_before: _Optional[str] = ..., sum_after: _Optional[str] = ..., examples: _Optional[_Iterable[_Union[ImpactExample, _Mapping]]] = ...) -> None: ...

class ValueTransition(_message.Message):
    __slots__ = ("before", "after", "count")
    BEFORE_FIELD_NUMBER: _ClassVar[int]
    AFTER_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    before: _struct_pb2.Value
    after: _struct_pb2.Value
    count: int
    def __init__(self, before: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., after: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., count: _Optional[int] = ...) -> None: ...

class ImpactExample(_message.Message):
    __slots__ = ("decision_id", "as_of", "before", "after", "first_rule", "message")
    DECISION_ID_FIELD_NUMBER: _ClassVar[int]
    AS_OF_FIELD_NUMBER: _ClassVar[int]
    BEFORE_FIELD_NUMBER: _ClassVar[int]
    AFTER_FIELD_NUMBER: _ClassVar[int]
    FIRST_RULE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    decision_id: str
    as_of: str
    before: _struct_pb2.Value
    after: _struct_pb2.Value
    first_rule: str
    message: str
    def __init__(self, decision_id: _Optional[str] = ..., as_of: _Optional[str] = ..., before: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., after: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., first_rule: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...

class StoredVersion(_message.Message):
    __slots__ = ("name", "version", "sha256", "state", "title", "gyldig_fra", "gyldig_til", "proposed_by", "retired_from", "unverified_hjemler", "allow_gap_before", "selected_by", "supersedes", "correction_reason", "published_at", "corrected_by")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    GYLDIG_FRA_FIELD_NUMBER: _ClassVar[int]
    GYLDIG_TIL_FIELD_NUMBER: _ClassVar[int]
    PROPOSED_BY_FIELD_NUMBER: _ClassVar[int]
    RETIRED_FROM_FIELD_NUMBER: _ClassVar[int]
    UNVERIFIED_HJEMLER_FIELD_NUMBER: _ClassVar[int]
    ALLOW_GAP_BEFORE_FIELD_NUMBER: _ClassVar[int]
    SELECTED_BY_FIELD_NUMBER: _ClassVar[int]
    SUPERSEDES_FIELD_NUMBER: _ClassVar[int]
    CORRECTION_REASON_FIELD_NUMBER: _ClassVar[int]
    PUBLISHED_AT_FIELD_NUMBER: _ClassVar[int]
    CORRECTED_BY_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: str
    sha256: str
    state: str
    title: str
    gyldig_fra: str
    gyldig_til: str
    proposed_by: str
    retired_from: str
    unverified_hjemler: _containers.RepeatedScalarFieldContainer[str]
    allow_gap_before: bool
    selected_by: str
    supersedes: str
    correction_reason: str
    published_at: str
    corrected_by: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, name: _Optional[str] = ..., version: _Optional[str] = ..., sha256: _Optional[str] = ..., state: _Optional[str] = ..., title: _Optional[str] = ..., gyldig_fra: _Optional[str] = ..., gyldig_til: _Optional[str] = ..., proposed_by: _Optional[str] = ..., retired_from: _Optional[str] = ..., unverified_hjemler: _Optional[_Iterable[str]] = ..., allow_gap_before: _Optional[bool] = ..., selected_by: _Optional[str] = ..., supersedes: _Optional[str] = ..., correction_reason: _Optional[str] = ..., published_at: _Optional[str] = ..., corrected_by: _Optional[_Iterable[str]] = ...) -> None: ...

class ProposeRulesetRequest(_message.Message):
    __slots__ = ("source", "cases")
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    CASES_FIELD_NUMBER: _ClassVar[int]
    source: str
    cases: str
    def __init__(self, source: _Optional[str] = ..., cases: _Optional[str] = ...) -> None: ...

class ProposeRulesetResponse(_message.Message):
    __slots__ = ("accepted", "diagnostics", "test", "version")
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    DIAGNOSTICS_FIELD_NUMBER: _ClassVar[int]
    TEST_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    accepted: bool
    diagnostics: _containers.RepeatedCompositeFieldContainer[Diagnostic]
    test: TestRulesetResponse
    version: StoredVersion
    def __init__(self, accepted: _Optional[bool] = ..., diagnostics: _Optional[_Iterable[_Union[Diagnostic, _Mapping]]] = ..., test: _Optional[_Union[TestRulesetResponse, _Mapping]] = ..., version: _Optional[_Union[StoredVersion, _Mapping]] = ...) -> None: ...

class ApproveRulesetRequest(_message.Message):
    __slots__ = ("name", "version", "sha256", "acknowledge_unverified")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    ACKNOWLEDGE_UNVERIFIED_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: str
    sha256: str
    acknowledge_unverified: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, name: _Optional[str] = ..., version: _Optional[str] = ..., sha256: _Optional[str] = ..., acknowledge_unverified: _Optional[_Iterable[str]] = ...) -> None: ...

class ApproveRulesetResponse(_message.Message):
    __slots__ = ("version",)
    VERSION_FIELD_NUMBER: _ClassVar[int]
    version: StoredVersion
    def __init__(self, version: _Optional[_Union[StoredVersion, _Mapping]] = ...) -> None: ...

class RejectRulesetRequest(_message.Message):
    __slots__ = ("name", "version", "reason")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: str
    reason: str
    def __init__(self, name: _Optional[str] = ..., version: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class RejectRulesetResponse(_message.Message):
    __slots__ = ("version",)
    VERSION_FIELD_NUMBER: _ClassVar[int]
    version: StoredVersion
    def __init__(self, version: _Optional[_Union[StoredVersion, _Mapping]] = ...) -> None: ...

class RetireRulesetRequest(_message.Message):
    __slots__ = ("name", "version", "from_date", "reason")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    FROM_DATE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: str
    from_date: str
    reason: str
    def __init__(self, name: _Optional[str] = ..., version: _Optional[str] = ..., from_date: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class RetireRulesetResponse(_message.Message):
    __slots__ = ("version",)
    VERSION_FIELD_NUMBER: _ClassVar[int]
    version: StoredVersion
    def __init__(self, version: _Optional[_Union[StoredVersion, _Mapping]] = ...) -> None: ...

class GetRulesetHistoryRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class LifecycleEvent(_message.Message):
    __slots__ = ("id", "at", "who", "action", "version", "sha256", "reason", "detail_json", "hash")
    ID_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    WHO_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    DETAIL_JSON_FIELD_NUMBER: _ClassVar[int]
    HASH_FIELD_NUMBER: _ClassVar[int]
    id: int
    at: str
    who: str
    action: str
    version: str
    sha256: str
    reason: str
    detail_json: str
    hash: str
    def __init__(self, id: _Optional[int] = ..., at: _Optional[str] = ..., who: _Optional[str] = ..., action: _Optional[str] = ..., version: _Optional[str] = ..., sha256: _Optional[str] = ..., reason: _Optional[str] = ..., detail_json: _Optional[str] = ..., hash: _Optional[str] = ...) -> None: ...

class GetRulesetHistoryResponse(_message.Message):
    __slots__ = ("versions", "events")
    VERSIONS_FIELD_NUMBER: _ClassVar[int]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    versions: _containers.RepeatedCompositeFieldContainer[StoredVersion]
    events: _containers.RepeatedCompositeFieldContainer[LifecycleEvent]
    def __init__(self, versions: _Optional[_Iterable[_Union[StoredVersion, _Mapping]]] = ..., events: _Optional[_Iterable[_Union[LifecycleEvent, _Mapping]]] = ...) -> None: ...
