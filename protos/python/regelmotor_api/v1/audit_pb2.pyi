import datetime

from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from regelmotor_api.v1 import decision_pb2 as _decision_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class DecisionFilter(_message.Message):
    __slots__ = ("recorded_from", "recorded_to", "ruleset", "version", "outcome_field", "outcome_value", "national_id", "caller")
    RECORDED_FROM_FIELD_NUMBER: _ClassVar[int]
    RECORDED_TO_FIELD_NUMBER: _ClassVar[int]
    RULESET_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_VALUE_FIELD_NUMBER: _ClassVar[int]
    NATIONAL_ID_FIELD_NUMBER: _ClassVar[int]
    CALLER_FIELD_NUMBER: _ClassVar[int]
    recorded_from: _timestamp_pb2.Timestamp
    recorded_to: _timestamp_pb2.Timestamp
    ruleset: str
    version: str
    outcome_field: str
    outcome_value: _struct_pb2.Value
    national_id: str
    caller: str
    def __init__(self, recorded_from: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., recorded_to: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., ruleset: _Optional[str] = ..., version: _Optional[str] = ..., outcome_field: _Optional[str] = ..., outcome_value: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., national_id: _Optional[str] = ..., caller: _Optional[str] = ...) -> None: ...

class ListDecisionsRequest(_message.Message):
    __slots__ = ("filter", "page_size", "page_token", "formaal")
    FILTER_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    FORMAAL_FIELD_NUMBER: _ClassVar[int]
    filter: DecisionFilter
    page_size: int
    page_token: str
    formaal: str
    def __init__(self, filter: _Optional[_Union[DecisionFilter, _Mapping]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., formaal: _Optional[str] = ...) -> None: ...

class DecisionSummary(_message.Message):
    __slots__ = ("seq", "decision_id", "recorded_at", "caller", "request_id", "ruleset", "version", "as_of", "outcome", "subject", "hash")
    SEQ_FIELD_NUMBER: _ClassVar[int]
    DECISION_ID_FIELD_NUMBER: _ClassVar[int]
    RECORDED_AT_FIELD_NUMBER: _ClassVar[int]
    CALLER_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    RULESET_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    AS_OF_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    HASH_FIELD_NUMBER: _ClassVar[int]
    seq: int
    decision_id: str
    recorded_at: _timestamp_pb2.Timestamp
    caller: str
    request_id: str
    ruleset: str
    version: str
    as_of: str
    outcome: _struct_pb2.Struct
    subject: str
    hash: str
    def __init__(self, seq: _Optional[int] = ..., decision_id: _Optional[str] = ..., recorded_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., caller: _Optional[str] = ..., request_id: _Optional[str] = ..., ruleset: _Optional[str] = ..., version: _Optional[str] = ..., as_of: _Optional[str] = ..., outcome: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., subject: _Optional[str] = ..., hash: _Optional[str] = ...) -> None: ...

class ListDecisionsResponse(_message.Message):
    __slots__ = ("decisions", "next_page_token")
    DECISIONS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    decisions: _containers.RepeatedCompositeFieldContainer[DecisionSummary]
    next_page_token: str
    def __init__(self, decisions: _Optional[_Iterable[_Union[DecisionSummary, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class GetDecisionRequest(_message.Message):
    __slots__ = ("decision_id", "formaal")
    DECISION_ID_FIELD_NUMBER: _ClassVar[int]
    FORMAAL_FIELD_NUMBER: _ClassVar[int]
    decision_id: str
    formaal: str
    def __init__(self, decision_id: _Optional[str] = ..., formaal: _Optional[str] = ...) -> None: ...

class GetDecisionResponse(_message.Message):
    __slots__ = ("summary", "decision", "facts", "prev_hash", "ruleset_sha256", "engine_version", "trace_id", "answer_sha256")
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    DECISION_FIELD_NUMBER: _ClassVar[int]
    FACTS_FIELD_NUMBER: _ClassVar[int]
    PREV_HASH_FIELD_NUMBER: _ClassVar[int]
    RULESET_SHA256_FIELD_NUMBER: _ClassVar[int]
    ENGINE_VERSION_FIELD_NUMBER: _ClassVar[int]
    TRACE_ID_FIELD_NUMBER: _ClassVar[int]
    ANSWER_SHA256_FIELD_NUMBER: _ClassVar[int]
    summary: DecisionSummary
    decision: _decision_pb2.Decision
    facts: _struct_pb2.Struct
    prev_hash: str
    ruleset_sha256: str
    engine_version: str
    trace_id: str
    answer_sha256: str
    def __init__(self, summary: _Optional[_Union[DecisionSummary, _Mapping]] = ..., decision: _Optional[_Union[_decision_pb2.Decision, _Mapping]] = ..., facts: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., prev_hash: _Optional[str] = ..., ruleset_sha256: _Optional[str] = ..., engine_version: _Optional[str] = ..., trace_id: _Optional[str] = ..., answer_sha256: _Optional[str] = ...) -> None: ...

class ReplayDecisionRequest(_message.Message):
    __slots__ = ("decision_id", "formaal")
    DECISION_ID_FIELD_NUMBER: _ClassVar[int]
    FORMAAL_FIELD_NUMBER: _ClassVar[int]
    decision_id: str
    formaal: str
    def __init__(self, decision_id: _Optional[str] = ..., formaal: _Optional[str] = ...) -> None: ...

class FieldDifference(_message.Message):
    __slots__ = ("path", "recorded", "replayed")
    PATH_FIELD_NUMBER: _ClassVar[int]
    RECORDED_FIELD_NUMBER: _ClassVar[int]
    REPLAYED_FIELD_NUMBER: _ClassVar[int]
    path: str
    recorded: _struct_pb2.Value
    replayed: _struct_pb2.Value
    def __init__(self, path: _Optional[str] = ..., recorded: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., replayed: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ...) -> None: ...

class ReplayDecisionResponse(_message.Message):
    __slots__ = ("identical", "differences", "version", "ruleset_sha256", "decision", "explanation_level", "answer_sha256", "replayed_answer_sha256", "answer_matches")
    IDENTICAL_FIELD_NUMBER: _ClassVar[int]
    DIFFERENCES_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    RULESET_SHA256_FIELD_NUMBER: _ClassVar[int]
    DECISION_FIELD_NUMBER: _ClassVar[int]
    EXPLANATION_LEVEL_FIELD_NUMBER: _ClassVar[int]
    ANSWER_SHA256_FIELD_NUMBER: _ClassVar[int]
    REPLAYED_ANSWER_SHA256_FIELD_NUMBER: _ClassVar[int]
    ANSWER_MATCHES_FIELD_NUMBER: _ClassVar[int]
    identical: bool
    differences: _containers.RepeatedCompositeFieldContainer[FieldDifference]
    version: str
    ruleset_sha256: str
    decision: _decision_pb2.Decision
    explanation_level: _decision_pb2.ExplanationLevel
    answer_sha256: str
    replayed_answer_sha256: str
    answer_matches: bool
    def __init__(self, identical: _Optional[bool] = ..., differences: _Optional[_Iterable[_Union[FieldDifference, _Mapping]]] = ..., version: _Optional[str] = ..., ruleset_sha256: _Optional[str] = ..., decision: _Optional[_Union[_decision_pb2.Decision, _Mapping]] = ..., explanation_level: _Optional[_Union[_decision_pb2.ExplanationLevel, str]] = ..., answer_sha256: _Optional[str] = ..., replayed_answer_sha256: _Optional[str] = ..., answer_matches: _Optional[bool] = ...) -> None: ...

class VerifyLogRequest(_message.Message):
    __slots__ = ("formaal",)
    FORMAAL_FIELD_NUMBER: _ClassVar[int]
    formaal: str
    def __init__(self, formaal: _Optional[str] = ...) -> None: ...

class ChainProblem(_message.Message):
    __slots__ = ("seq", "decision_id", "kind", "message")
    SEQ_FIELD_NUMBER: _ClassVar[int]
    DECISION_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    seq: int
    decision_id: str
    kind: str
    message: str
    def __init__(self, seq: _Optional[int] = ..., decision_id: _Optional[str] = ..., kind: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...

class VerifyLogResponse(_message.Message):
    __slots__ = ("ok", "checked", "first_problem", "checkpoint", "retention_cut")
    OK_FIELD_NUMBER: _ClassVar[int]
    CHECKED_FIELD_NUMBER: _ClassVar[int]
    FIRST_PROBLEM_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_FIELD_NUMBER: _ClassVar[int]
    RETENTION_CUT_FIELD_NUMBER: _ClassVar[int]
    ok: bool
    checked: int
    first_problem: ChainProblem
    checkpoint: LogCheckpoint
    retention_cut: RetentionCut
    def __init__(self, ok: _Optional[bool] = ..., checked: _Optional[int] = ..., first_problem: _Optional[_Union[ChainProblem, _Mapping]] = ..., checkpoint: _Optional[_Union[LogCheckpoint, _Mapping]] = ..., retention_cut: _Optional[_Union[RetentionCut, _Mapping]] = ...) -> None: ...

class RetentionCut(_message.Message):
    __slots__ = ("seq", "hash", "cutoff", "at", "key_id", "signature")
    SEQ_FIELD_NUMBER: _ClassVar[int]
    HASH_FIELD_NUMBER: _ClassVar[int]
    CUTOFF_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    seq: int
    hash: str
    cutoff: str
    at: str
    key_id: str
    signature: str
    def __init__(self, seq: _Optional[int] = ..., hash: _Optional[str] = ..., cutoff: _Optional[str] = ..., at: _Optional[str] = ..., key_id: _Optional[str] = ..., signature: _Optional[str] = ...) -> None: ...

class LogCheckpoint(_message.Message):
    __slots__ = ("seq", "hash", "access_id", "access_hash", "at", "lifecycle_id", "lifecycle_hash")
    SEQ_FIELD_NUMBER: _ClassVar[int]
    HASH_FIELD_NUMBER: _ClassVar[int]
    ACCESS_ID_FIELD_NUMBER: _ClassVar[int]
    ACCESS_HASH_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    LIFECYCLE_ID_FIELD_NUMBER: _ClassVar[int]
    LIFECYCLE_HASH_FIELD_NUMBER: _ClassVar[int]
    seq: int
    hash: str
    access_id: int
    access_hash: str
    at: str
    lifecycle_id: int
    lifecycle_hash: str
    def __init__(self, seq: _Optional[int] = ..., hash: _Optional[str] = ..., access_id: _Optional[int] = ..., access_hash: _Optional[str] = ..., at: _Optional[str] = ..., lifecycle_id: _Optional[int] = ..., lifecycle_hash: _Optional[str] = ...) -> None: ...

class ExportDecisionsRequest(_message.Message):
    __slots__ = ("filter", "formaal")
    FILTER_FIELD_NUMBER: _ClassVar[int]
    FORMAAL_FIELD_NUMBER: _ClassVar[int]
    filter: DecisionFilter
    formaal: str
    def __init__(self, filter: _Optional[_Union[DecisionFilter, _Mapping]] = ..., formaal: _Optional[str] = ...) -> None: ...

class ExportDecisionsResponse(_message.Message):
    __slots__ = ("json_line",)
    JSON_LINE_FIELD_NUMBER: _ClassVar[int]
    json_line: str
    def __init__(self, json_line: _Optional[str] = ...) -> None: ...

class AccessLogFilter(_message.Message):
    __slots__ = ("at_from", "at_to", "reader", "decision_id", "formaal_contains", "method")
    AT_FROM_FIELD_NUMBER: _ClassVar[int]
    AT_TO_FIELD_NUMBER: _ClassVar[int]
    READER_FIELD_NUMBER: _ClassVar[int]
    DECISION_ID_FIELD_NUMBER: _ClassVar[int]
    FORMAAL_CONTAINS_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    at_from: _timestamp_pb2.Timestamp
    at_to: _timestamp_pb2.Timestamp
    reader: str
    decision_id: str
    formaal_contains: str
    method: str
    def __init__(self, at_from: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., at_to: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., reader: _Optional[str] = ..., decision_id: _Optional[str] = ..., formaal_contains: _Optional[str] = ..., method: _Optional[str] = ...) -> None: ...

class ListAccessLogRequest(_message.Message):
    __slots__ = ("filter", "page_size", "page_token", "formaal")
    FILTER_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    FORMAAL_FIELD_NUMBER: _ClassVar[int]
    filter: AccessLogFilter
    page_size: int
    page_token: str
    formaal: str
    def __init__(self, filter: _Optional[_Union[AccessLogFilter, _Mapping]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., formaal: _Optional[str] = ...) -> None: ...

class AccessLogEntry(_message.Message):
    __slots__ = ("id", "at", "reader", "method", "detail", "formaal", "decision_id")
    ID_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    READER_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    FORMAAL_FIELD_NUMBER: _ClassVar[int]
    DECISION_ID_FIELD_NUMBER: _ClassVar[int]
    id: int
    at: _timestamp_pb2.Timestamp
    reader: str
    method: str
    detail: _struct_pb2.Struct
    formaal: str
    decision_id: str
    def __init__(self, id: _Optional[int] = ..., at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., reader: _Optional[str] = ..., method: _Optional[str] = ..., detail: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., formaal: _Optional[str] = ..., decision_id: _Optional[str] = ...) -> None: ...

class ListAccessLogResponse(_message.Message):
    __slots__ = ("entries", "next_page_token")
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[AccessLogEntry]
    next_page_token: str
    def __init__(self, entries: _Optional[_Iterable[_Union[AccessLogEntry, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class CountDecisionsRequest(_message.Message):
    __slots__ = ("filter", "outcome_field", "formaal")
    FILTER_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_FIELD_NUMBER: _ClassVar[int]
    FORMAAL_FIELD_NUMBER: _ClassVar[int]
    filter: DecisionFilter
    outcome_field: str
    formaal: str
    def __init__(self, filter: _Optional[_Union[DecisionFilter, _Mapping]] = ..., outcome_field: _Optional[str] = ..., formaal: _Optional[str] = ...) -> None: ...

class DecisionCount(_message.Message):
    __slots__ = ("day", "value", "count")
    DAY_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    day: str
    value: _struct_pb2.Value
    count: int
    def __init__(self, day: _Optional[str] = ..., value: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., count: _Optional[int] = ...) -> None: ...

class CountDecisionsResponse(_message.Message):
    __slots__ = ("counts", "outcome_field", "total")
    COUNTS_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    counts: _containers.RepeatedCompositeFieldContainer[DecisionCount]
    outcome_field: str
    total: int
    def __init__(self, counts: _Optional[_Iterable[_Union[DecisionCount, _Mapping]]] = ..., outcome_field: _Optional[str] = ..., total: _Optional[int] = ...) -> None: ...
