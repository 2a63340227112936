from google.protobuf import any_pb2 as _any_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ExplanationLevel(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EXPLANATION_LEVEL_UNSPECIFIED: _ClassVar[ExplanationLevel]
    EXPLANATION_LEVEL_FULL: _ClassVar[ExplanationLevel]
    EXPLANATION_LEVEL_FIRED: _ClassVar[ExplanationLevel]
    EXPLANATION_LEVEL_NONE: _ClassVar[ExplanationLevel]
EXPLANATION_LEVEL_UNSPECIFIED: ExplanationLevel
EXPLANATION_LEVEL_FULL: ExplanationLevel
EXPLANATION_LEVEL_FIRED: ExplanationLevel
EXPLANATION_LEVEL_NONE: ExplanationLevel

class FetchDecisionRequest(_message.Message):
    __slots__ = ("decision_id",)
    DECISION_ID_FIELD_NUMBER: _ClassVar[int]
    decision_id: str
    def __init__(self, decision_id: _Optional[str] = ...) -> None: ...

class EvaluateRequest(_message.Message):
    __slots__ = ("ruleset", "version", "as_of", "facts", "request_id", "national_id", "explanation", "known_at")
    RULESET_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    AS_OF_FIELD_NUMBER: _ClassVar[int]
    FACTS_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    NATIONAL_ID_FIELD_NUMBER: _ClassVar[int]
    EXPLANATION_FIELD_NUMBER: _ClassVar[int]
    KNOWN_AT_FIELD_NUMBER: _ClassVar[int]
    ruleset: str
    version: str
    as_of: str
    facts: _struct_pb2.Struct
    request_id: str
    national_id: str
    explanation: ExplanationLevel
    known_at: str
    def __init__(self, ruleset: _Optional[str] = ..., version: _Optional[str] = ..., as_of: _Optional[str] = ..., facts: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., request_id: _Optional[str] = ..., national_id: _Optional[str] = ..., explanation: _Optional[_Union[ExplanationLevel, str]] = ..., known_at: _Optional[str] = ...) -> None: ...

class Decision(_message.Message):
    __slots__ = ("decision_id", "request_id", "ruleset", "version", "ruleset_sha256", "engine_version", "as_of", "selected_by", "selection_date", "facts", "outcome", "manuell_vurdering", "explanation", "trace_id", "explanation_level", "correction", "known_at")
    DECISION_ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    RULESET_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    RULESET_SHA256_FIELD_NUMBER: _ClassVar[int]
    ENGINE_VERSION_FIELD_NUMBER: _ClassVar[int]
    AS_OF_FIELD_NUMBER: _ClassVar[int]
    SELECTED_BY_FIELD_NUMBER: _ClassVar[int]
    SELECTION_DATE_FIELD_NUMBER: _ClassVar[int]
    FACTS_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    MANUELL_VURDERING_FIELD_NUMBER: _ClassVar[int]
    EXPLANATION_FIELD_NUMBER: _ClassVar[int]
    TRACE_ID_FIELD_NUMBER: _ClassVar[int]
    EXPLANATION_LEVEL_FIELD_NUMBER: _ClassVar[int]
    CORRECTION_FIELD_NUMBER: _ClassVar[int]
    KNOWN_AT_FIELD_NUMBER: _ClassVar[int]
    decision_id: str
    request_id: str
    ruleset: str
    version: str
    ruleset_sha256: str
    engine_version: str
    as_of: str
    selected_by: str
    selection_date: str
    facts: _struct_pb2.Struct
    outcome: _struct_pb2.Struct
    manuell_vurdering: _containers.RepeatedCompositeFieldContainer[ManualReview]
    explanation: Explanation
    trace_id: str
    explanation_level: ExplanationLevel
    correction: Correction
    known_at: str
    def __init__(self, decision_id: _Optional[str] = ..., request_id: _Optional[str] = ..., ruleset: _Optional[str] = ..., version: _Optional[str] = ..., ruleset_sha256: _Optional[str] = ..., engine_version: _Optional[str] = ..., as_of: _Optional[str] = ..., selected_by: _Optional[str] = ..., selection_date: _Optional[str] = ..., facts: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., outcome: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., manuell_vurdering: _Optional[_Iterable[_Union[ManualReview, _Mapping]]] = ..., explanation: _Optional[_Union[Explanation, _Mapping]] = ..., trace_id: _Optional[str] = ..., explanation_level: _Optional[_Union[ExplanationLevel, str]] = ..., correction: _Optional[_Union[Correction, _Mapping]] = ..., known_at: _Optional[str] = ...) -> None: ...

class Correction(_message.Message):
    __slots__ = ("supersedes", "published_at")
    SUPERSEDES_FIELD_NUMBER: _ClassVar[int]
    PUBLISHED_AT_FIELD_NUMBER: _ClassVar[int]
    supersedes: str
    published_at: str
    def __init__(self, supersedes: _Optional[str] = ..., published_at: _Optional[str] = ...) -> None: ...

class ManualReview(_message.Message):
    __slots__ = ("rule_id", "begrunnelse")
    RULE_ID_FIELD_NUMBER: _ClassVar[int]
    BEGRUNNELSE_FIELD_NUMBER: _ClassVar[int]
    rule_id: str
    begrunnelse: str
    def __init__(self, rule_id: _Optional[str] = ..., begrunnelse: _Optional[str] = ...) -> None: ...

class Explanation(_message.Message):
    __slots__ = ("rules", "derived", "parameters", "outcomes")
    RULES_FIELD_NUMBER: _ClassVar[int]
    DERIVED_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    OUTCOMES_FIELD_NUMBER: _ClassVar[int]
    rules: _containers.RepeatedCompositeFieldContainer[RuleTrace]
    derived: _containers.RepeatedCompositeFieldContainer[DerivedTrace]
    parameters: _containers.RepeatedCompositeFieldContainer[ParameterTrace]
    outcomes: _containers.RepeatedCompositeFieldContainer[OutcomeTrace]
    def __init__(self, rules: _Optional[_Iterable[_Union[RuleTrace, _Mapping]]] = ..., derived: _Optional[_Iterable[_Union[DerivedTrace, _Mapping]]] = ..., parameters: _Optional[_Iterable[_Union[ParameterTrace, _Mapping]]] = ..., outcomes: _Optional[_Iterable[_Union[OutcomeTrace, _Mapping]]] = ...) -> None: ...

class Hjemmel(_message.Message):
    __slots__ = ("id", "kilde", "sitat", "kapittel", "paragraf", "ledd", "punktum", "bokstav", "i_kraft", "url", "verified", "merknad")
    ID_FIELD_NUMBER: _ClassVar[int]
    KILDE_FIELD_NUMBER: _ClassVar[int]
    SITAT_FIELD_NUMBER: _ClassVar[int]
    KAPITTEL_FIELD_NUMBER: _ClassVar[int]
    PARAGRAF_FIELD_NUMBER: _ClassVar[int]
    LEDD_FIELD_NUMBER: _ClassVar[int]
    PUNKTUM_FIELD_NUMBER: _ClassVar[int]
    BOKSTAV_FIELD_NUMBER: _ClassVar[int]
    I_KRAFT_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    VERIFIED_FIELD_NUMBER: _ClassVar[int]
    MERKNAD_FIELD_NUMBER: _ClassVar[int]
    id: str
    kilde: str
    sitat: str
    kapittel: str
    paragraf: str
    ledd: int
    punktum: int
    bokstav: str
    i_kraft: str
    url: str
    verified: bool
    merknad: str
    def __init__(self, id: _Optional[str] = ..., kilde: _Optional[str] = ..., sitat: _Optional[str] = ..., kapittel: _Optional[str] = ..., paragraf: _Optional[str] = ..., ledd: _Optional[int] = ..., punktum: _Optional[int] = ..., bokstav: _Optional[str] = ..., i_kraft: _Optional[str] = ..., url: _Optional[str] = ..., verified: _Optional[bool] = ..., merknad: _Optional[str] = ...) -> None: ...

class ConditionTrace(_message.Message):
    __slots__ = ("condition", "held", "reads", "negated")
    CONDITION_FIELD_NUMBER: _ClassVar[int]
    HELD_FIELD_NUMBER: _ClassVar[int]
    READS_FIELD_NUMBER: _ClassVar[int]
    NEGATED_FIELD_NUMBER: _ClassVar[int]
    condition: str
    held: bool
    reads: _struct_pb2.Struct
    negated: bool
    def __init__(self, condition: _Optional[str] = ..., held: _Optional[bool] = ..., reads: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., negated: _Optional[bool] = ...) -> None: ...

class ExceptionTrace(_message.Message):
    __slots__ = ("rule_id", "held")
    RULE_ID_FIELD_NUMBER: _ClassVar[int]
    HELD_FIELD_NUMBER: _ClassVar[int]
    rule_id: str
    held: bool
    def __init__(self, rule_id: _Optional[str] = ..., held: _Optional[bool] = ...) -> None: ...

class RuleTrace(_message.Message):
    __slots__ = ("id", "title", "hjemmel", "condition", "fired", "applied", "result", "conditions", "unntak_fra", "exceptions", "overridden_by", "manuell_vurdering", "begrunnelse", "round")
    ID_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    HJEMMEL_FIELD_NUMBER: _ClassVar[int]
    CONDITION_FIELD_NUMBER: _ClassVar[int]
    FIRED_FIELD_NUMBER: _ClassVar[int]
    APPLIED_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    CONDITIONS_FIELD_NUMBER: _ClassVar[int]
    UNNTAK_FRA_FIELD_NUMBER: _ClassVar[int]
    EXCEPTIONS_FIELD_NUMBER: _ClassVar[int]
    OVERRIDDEN_BY_FIELD_NUMBER: _ClassVar[int]
    MANUELL_VURDERING_FIELD_NUMBER: _ClassVar[int]
    BEGRUNNELSE_FIELD_NUMBER: _ClassVar[int]
    ROUND_FIELD_NUMBER: _ClassVar[int]
    id: str
    title: str
    hjemmel: _containers.RepeatedCompositeFieldContainer[Hjemmel]
    condition: str
    fired: bool
    applied: bool
    result: _struct_pb2.Struct
    conditions: _containers.RepeatedCompositeFieldContainer[ConditionTrace]
    unntak_fra: str
    exceptions: _containers.RepeatedCompositeFieldContainer[ExceptionTrace]
    overridden_by: _containers.RepeatedScalarFieldContainer[str]
    manuell_vurdering: str
    begrunnelse: str
    round: int
    def __init__(self, id: _Optional[str] = ..., title: _Optional[str] = ..., hjemmel: _Optional[_Iterable[_Union[Hjemmel, _Mapping]]] = ..., condition: _Optional[str] = ..., fired: _Optional[bool] = ..., applied: _Optional[bool] = ..., result: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., conditions: _Optional[_Iterable[_Union[ConditionTrace, _Mapping]]] = ..., unntak_fra: _Optional[str] = ..., exceptions: _Optional[_Iterable[_Union[ExceptionTrace, _Mapping]]] = ..., overridden_by: _Optional[_Iterable[str]] = ..., manuell_vurdering: _Optional[str] = ..., begrunnelse: _Optional[str] = ..., round: _Optional[int] = ...) -> None: ...

class DerivedTrace(_message.Message):
    __slots__ = ("name", "expression", "inputs", "value")
    NAME_FIELD_NUMBER: _ClassVar[int]
    EXPRESSION_FIELD_NUMBER: _ClassVar[int]
    INPUTS_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    name: str
    expression: str
    inputs: _struct_pb2.Struct
    value: _struct_pb2.Value
    def __init__(self, name: _Optional[str] = ..., expression: _Optional[str] = ..., inputs: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., value: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ...) -> None: ...

class ParameterTrace(_message.Message):
    __slots__ = ("name", "on", "gyldig_fra", "value", "unit", "sekundaerkilde")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ON_FIELD_NUMBER: _ClassVar[int]
    GYLDIG_FRA_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    UNIT_FIELD_NUMBER: _ClassVar[int]
    SEKUNDAERKILDE_FIELD_NUMBER: _ClassVar[int]
    name: str
    on: str
    gyldig_fra: str
    value: _struct_pb2.Value
    unit: str
    sekundaerkilde: str
    def __init__(self, name: _Optional[str] = ..., on: _Optional[str] = ..., gyldig_fra: _Optional[str] = ..., value: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., unit: _Optional[str] = ..., sekundaerkilde: _Optional[str] = ...) -> None: ...

class OutcomeTrace(_message.Message):
    __slots__ = ("name", "value", "combine", "from_rules", "internal")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    COMBINE_FIELD_NUMBER: _ClassVar[int]
    FROM_RULES_FIELD_NUMBER: _ClassVar[int]
    INTERNAL_FIELD_NUMBER: _ClassVar[int]
    name: str
    value: _struct_pb2.Value
    combine: str
    from_rules: _containers.RepeatedScalarFieldContainer[str]
    internal: bool
    def __init__(self, name: _Optional[str] = ..., value: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., combine: _Optional[str] = ..., from_rules: _Optional[_Iterable[str]] = ..., internal: _Optional[bool] = ...) -> None: ...

class EvaluateStreamResponse(_message.Message):
    __slots__ = ("index", "request_id", "decision", "error")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    DECISION_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    index: int
    request_id: str
    decision: Decision
    error: ErrorResult
    def __init__(self, index: _Optional[int] = ..., request_id: _Optional[str] = ..., decision: _Optional[_Union[Decision, _Mapping]] = ..., error: _Optional[_Union[ErrorResult, _Mapping]] = ...) -> None: ...

class ErrorResult(_message.Message):
    __slots__ = ("code", "message", "details")
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    DETAILS_FIELD_NUMBER: _ClassVar[int]
    code: int
    message: str
    details: _containers.RepeatedCompositeFieldContainer[_any_pb2.Any]
    def __init__(self, code: _Optional[int] = ..., message: _Optional[str] = ..., details: _Optional[_Iterable[_Union[_any_pb2.Any, _Mapping]]] = ...) -> None: ...
