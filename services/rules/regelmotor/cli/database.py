"""`regelmotor db migrate`: apply the decision log's schema migrations before a new version of the service
starts (a Kubernetes Job, deploy/k8s). Opening a log applies the missing migrations under a lock, so this is
the same step the server takes at start, run once and on its own; running it again applies nothing."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from .backup import add_backup


def add_database(sub: Any) -> None:
    db = sub.add_parser("db", help="decision log and ruleset store operations").add_subparsers(dest="action",
                                                                                               required=True)
    p = db.add_parser("migrate", help="apply the schema migrations the store lacks (idempotent)")
    p.add_argument("--decision-log", help="the store: a postgresql:// DSN or a SQLite path "
                                          "(default: REGELMOTOR_DECISION_LOG)")
    p.set_defaults(func=cmd_migrate)
    add_backup(db)


def cmd_migrate(args: argparse.Namespace) -> int:
    import psycopg

    from regelmotor.store import open_log
    from regelmotor.store.migrations import SchemaError

    location = args.decision_log or os.environ.get("REGELMOTOR_DECISION_LOG", "")
    if not location or location == "off":
        print("regelmotor: db migrate: decision_log: give --decision-log or REGELMOTOR_DECISION_LOG "
              "(a postgresql:// DSN or a SQLite path)", file=sys.stderr)
        return 2
    try:
        log = open_log(location)
    except (ValueError, SchemaError) as exc:
        print(f"regelmotor: db migrate: decision_log: {exc}", file=sys.stderr)
        return 2
    except (psycopg.Error, OSError) as exc:  # unreachable or refusing: the Job fails and is retried
        print(f"regelmotor: db migrate: decision_log: cannot open the store ({type(exc).__name__}: {exc})",
              file=sys.stderr)
        return 1
    try:
        applied = log.migrated
        versions = log.schema_versions()
    finally:
        log.close()
    done = ", ".join(map(str, applied)) if applied else "none (already current)"
    print(f"migrations applied: {done}; schema version {versions[-1] if versions else 0}")
    return 0
