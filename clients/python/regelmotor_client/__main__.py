"""`regelmotor-client`: call a running Regelmotor from the shell and print the decision as JSON."""

from __future__ import annotations

import argparse
import json
import os
import sys

from regelmotor_api.facts import FactsFileError, read_facts

from .client import EXPLANATIONS, DecisionError, RegelmotorClient
from .errors import ClientConfigError

EXIT_STATUS = """exit status: 0 the decision was printed; 1 the server answered with an error (printed as JSON on
standard error); 2 the arguments, the facts file or the token were refused (the call was not sent)."""


def _refused(error: ClientConfigError) -> int:
    option = "--" + error.parameter.replace("_", "-")
    problem = error.problem.replace("_file", "-file").replace("_env", "-env").replace("_command", "-command")
    print(f"regelmotor-client: {option}: {problem}", file=sys.stderr)
    return 2


def _addresses(given: str) -> str | list[str]:
    """A comma-separated list of instances as a list; a gRPC target with a scheme (ipv4:a,b) as it is."""
    if "," in given and not given.startswith(("ipv4:", "ipv6:", "dns:", "unix:")):
        return given.split(",")
    return given


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="regelmotor-client", description=__doc__, epilog=EXIT_STATUS)
    parser.add_argument("--address", default=os.environ.get("REGELMOTOR_ADDRESS", "127.0.0.1:50051"),
                        help="the service (REGELMOTOR_ADDRESS, default 127.0.0.1:50051); several instances as "
                             "IP:port,IP:port (the call goes to one that is up)")
    tls = parser.add_argument_group("TLS (plaintext unless one of these is given)")
    tls.add_argument("--tls", action="store_true", help="connect over TLS, trusting the system's CAs")
    tls.add_argument("--ca-file", help="CA certificates (PEM) to trust instead of the system's")
    tls.add_argument("--cert-file", help="client certificate chain (PEM), for mutual TLS")
    tls.add_argument("--key-file", help="the client certificate's private key (PEM)")
    tls.add_argument("--server-name", help="the name the server's certificate must carry, when it is not the "
                                           "address's (instances given by IP address)")
    token = parser.add_argument_group("bearer token (for a server with tokens on; one of these)")
    given = token.add_mutually_exclusive_group()
    given.add_argument("--token-file", help="a file holding the token; read again when it changes or the token "
                                            "expires within a minute")
    given.add_argument("--token-env", metavar="NAME", help="an environment variable holding the token")
    given.add_argument("--token-command", metavar="COMMAND",
                       help="a command (no shell) printing the token; run again when it expires within a minute")
    sub = parser.add_subparsers(dest="command", required=True)
    evaluate = sub.add_parser("evaluate", help="evaluate facts and print the decision as JSON", epilog=EXIT_STATUS)
    evaluate.add_argument("--ruleset", required=True)
    evaluate.add_argument("--facts", required=True, help="a JSON or YAML file of facts, or - for standard input")
    evaluate.add_argument("--as-of")
    evaluate.add_argument("--version")
    evaluate.add_argument("--request-id")
    evaluate.add_argument("--explanation", choices=list(EXPLANATIONS), default="full",
                          help="how much of the explanation to ask for: every rule (full, the default), only the "
                               "rules that fired, or none (the decision log can give the full one later)")
    evaluate.add_argument("--outcome-only", action="store_true", help="print only the outcome")
    args = parser.parse_args(argv)
    try:
        facts = read_facts(args.facts)  # the same reader as `regelmotor evaluate`
    except FactsFileError as error:
        print(f"regelmotor-client: {error}", file=sys.stderr)
        return 2
    try:
        client = RegelmotorClient(_addresses(args.address), tls=args.tls, ca_file=args.ca_file,
                                  cert_file=args.cert_file, key_file=args.key_file, server_name=args.server_name,
                                  token_file=args.token_file, token_env=args.token_env,
                                  token_command=args.token_command)
    except ClientConfigError as error:
        return _refused(error)
    with client:
        try:
            decision = client.evaluate(args.ruleset, facts, as_of=args.as_of, version=args.version,
                                       request_id=args.request_id, explanation=args.explanation)
        except ClientConfigError as error:  # the token could not be got again for this call
            return _refused(error)
        except DecisionError as error:
            print(json.dumps({"code": error.code, "message": error.message,
                              "field_violations": error.field_violations, "reason": error.reason},
                             ensure_ascii=False, indent=2), file=sys.stderr)
            return 1
    print(json.dumps(decision["outcome"] if args.outcome_only else decision, ensure_ascii=False, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
