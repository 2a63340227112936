"""A small Python client for Regelmotor's gRPC API, with a command line.

`read_facts` reads a JSON or YAML facts file into the facts `RegelmotorClient.evaluate` takes, as the
`regelmotor-client` command and the server's `regelmotor evaluate` read them.
"""

from regelmotor_api.facts import FactsFileError, read_facts

from .client import DecisionError, RegelmotorClient, channel_credentials, decision_error
from .errors import ClientConfigError
from .rulesets import RulesetLifecycle

__all__ = ["ClientConfigError", "DecisionError", "FactsFileError", "RegelmotorClient", "RulesetLifecycle",
           "channel_credentials", "decision_error", "read_facts"]
