"""Which role each RPC needs: the one table the interceptor enforces, docs/security.md shows and the tests drive.

A token's scopes grant roles through `auth_scope_roles` (by default each role is granted by the scope of the
same name). A method missing from `REQUIRED_SCOPE` is refused, so a new RPC without an entry fails closed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

EVALUATE = "evaluate"
RULESET_READ = "ruleset:read"
RULESET_AUTHOR = "ruleset:author"
RULESET_APPROVE = "ruleset:approve"
AUDIT = "audit"
ROLES = (EVALUATE, RULESET_READ, RULESET_AUTHOR, RULESET_APPROVE, AUDIT)

# Each role granted by the scope of the same name; a deployment maps its identity provider's scope names
# (e.g. "nhn:regelmotor/evaluate") to these roles with `auth_scope_roles`.
DEFAULT_SCOPE_ROLES: dict[str, str] = {role: role for role in ROLES}

_DECISION = "/regelmotor.v1.DecisionService/"
_RULESET = "/regelmotor.v1.RulesetService/"
_AUDIT = "/regelmotor.v1.AuditService/"

# Full method name -> the role it needs (None: open to every caller, with or without a token).
REQUIRED_SCOPE: dict[str, str | None] = {
    _DECISION + "Evaluate": EVALUATE,
    _DECISION + "EvaluateStream": EVALUATE,
    _DECISION + "FetchDecision": EVALUATE,  # its own decisions only (the servicer checks the recorded caller)
    _RULESET + "ListRulesets": RULESET_READ,
    _RULESET + "GetRuleset": RULESET_READ,
    _RULESET + "ValidateRuleset": RULESET_READ,
    _RULESET + "TestRuleset": RULESET_READ,
    _RULESET + "DiffRulesets": RULESET_READ,
    # It reads logged decisions' facts (patient data) and shows outcomes of real decisions: an author's tool, not
    # every reader's; recorded in the access log with its purpose, as the AuditService's reads are.
    _RULESET + "AnalyseImpact": RULESET_AUTHOR,
    _RULESET + "GetRulesetHistory": RULESET_READ,
    _RULESET + "ProposeRuleset": RULESET_AUTHOR,
    _RULESET + "ApproveRuleset": RULESET_APPROVE,  # never by the version's proposer (four eyes, server/lifecycle.py)
    _RULESET + "RejectRuleset": RULESET_APPROVE,
    _RULESET + "RetireRuleset": RULESET_APPROVE,
    _AUDIT + "ListDecisions": AUDIT,
    _AUDIT + "GetDecision": AUDIT,
    _AUDIT + "ReplayDecision": AUDIT,
    _AUDIT + "VerifyLog": AUDIT,
    _AUDIT + "ExportDecisions": AUDIT,
    _AUDIT + "ListAccessLog": AUDIT,
    _AUDIT + "CountDecisions": AUDIT,
    "/grpc.health.v1.Health/Check": None,
    "/grpc.health.v1.Health/List": None,
    "/grpc.health.v1.Health/Watch": None,
    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo": None,
}


def roles_of(scopes: Iterable[str], scope_roles: Mapping[str, str]) -> frozenset[str]:
    """The roles a token's scopes grant."""
    return frozenset(scope_roles[scope] for scope in scopes if scope in scope_roles)


def granting_scopes(role: str, scope_roles: Mapping[str, str]) -> list[str]:
    """The scopes that grant `role` (named in a PERMISSION_DENIED, so the caller knows what to ask for)."""
    return sorted(scope for scope, granted in scope_roles.items() if granted == role)
