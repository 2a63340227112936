"""Names vulture (`make lint`) takes for dead code that something outside our code uses.

Each entry is a name only, so keep this short: add a name here only when a framework or a protocol
calls or reads it, and say which. Dead code itself is removed, not listed.
"""
# ruff: noqa: B018  (each line is an expression that only names something)
from types import SimpleNamespace

_ = SimpleNamespace()

# pydantic-settings reads `model_config` and calls `settings_customise_sources` with every source by
# keyword, the ones we do not use (dotenv, secret files) included (server/config.py).
_.model_config
_.settings_customise_sources
_.dotenv_settings
_.file_secret_settings

# protobuf: assigning a Value's oneof field is how the value is set (server/convert.py, bench/wire_alternative.py).
_.null_value
_.bool_value
_.number_value

# reprlib.Repr reads its limits as attributes and dispatches to repr_<type> by name (core/limits.py).
_.maxstring
_.maxother
_.maxlist
_.maxset
_.maxtuple
_.maxlevel
_.repr_int

# The context-manager protocol passes the traceback to __exit__ (store/base.py, store/group.py).
_.traceback

# psycopg reads a server-side cursor's `itersize` (store/postgres.py).
_.itersize

# PyYAML's Dumper calls ignore_aliases (tests/source_mutations.py); durable_rules' Host calls get_action
# (bench/engine.py).
_.ignore_aliases
_.get_action

# Dead, in store/ files a parallel change owns: remove there, then here (store/base.py, store/record.py).
_.outcome_json
_.of

# grpc.aio calls a server interceptor's `intercept_service` for each call (server/guard.py).
_.intercept_service

# http.server calls a handler's do_GET for each GET (the JWKS server of tests/test_auth.py).
_.do_GET

# A typing Protocol's parameter names describe the OpenTelemetry method they stand for (server/telemetry.py Gauge).
_.amount

# logging reads these module flags for every record; the service turns off what its JSON lines never show (the
# logging HOWTO's "Optimization"; server/telemetry.py).
_._srcfile
_.logThreads
_.logProcesses
_.logMultiprocessing

# Jinja2 reads its environment's options as attributes; waitress calls the application it holds (console/).
_.trim_blocks
_.lstrip_blocks
_.application

# html.parser.HTMLParser calls these for every tag and text (bench/console_pages.py).
_.handle_starttag
_.handle_data
_.handle_endtag
