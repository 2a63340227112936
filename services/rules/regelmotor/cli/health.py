"""`regelmotor health`: ask a running service's gRPC health service (grpc.health.v1) whether it serves.

Made for container health checks (deploy/Dockerfile's HEALTHCHECK, compose, Kubernetes exec probes): by default
it asks this machine's service on REGELMOTOR_PORT, the port `regelmotor serve` listens on in the same
environment. Health calls need no token (docs/security.md). Exit status: 0 SERVING; 1 anything else (NOT_SERVING,
an unknown service, no answer in time), with one line saying which.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc


def add_health(sub: Any) -> None:
    p = sub.add_parser("health", help="ask a running service whether it serves (exit 0 SERVING, else 1)")
    p.add_argument("--address", help="the service, host:port (default 127.0.0.1 on REGELMOTOR_PORT, else 50051)")
    p.add_argument("--service", default="", help="the service name to ask about (default \"\": the server as a "
                                                 "whole, SERVING while it decides)")
    p.add_argument("--ca-file", help="connect over TLS, trusting these CA certificates (PEM)")
    p.add_argument("--server-name", help="with --ca-file: the name the server's certificate must carry, when it "
                                         "is not the address's host (e.g. asking 127.0.0.1 inside the container)")
    p.add_argument("--timeout", type=float, default=3.0, help="seconds to wait for the answer (default 3)")
    p.set_defaults(func=cmd_health)


def _channel(args: argparse.Namespace, address: str) -> grpc.Channel:
    if args.ca_file is None:
        return grpc.insecure_channel(address)
    with open(args.ca_file, "rb") as file:
        credentials = grpc.ssl_channel_credentials(file.read())
    options = [("grpc.ssl_target_name_override", args.server_name)] if args.server_name else []
    return grpc.secure_channel(address, credentials, options)


def cmd_health(args: argparse.Namespace) -> int:
    address = args.address or f"127.0.0.1:{os.environ.get('REGELMOTOR_PORT') or '50051'}"
    try:
        with _channel(args, address) as channel:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=args.service), timeout=args.timeout)
    except OSError as exc:
        print(f"regelmotor health: cannot read --ca-file: {exc.strerror}", file=sys.stderr)
        return 1
    except grpc.RpcError as exc:
        print(f"regelmotor health: {address}: {exc.code().name}: {exc.details()}", file=sys.stderr)
        return 1
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
    print(f"{address}: {status}")
    return 0 if reply.status == health_pb2.HealthCheckResponse.SERVING else 1
