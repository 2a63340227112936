"""Where the client connects: one gRPC target, or several instances of the service that gRPC balances over.

Instances sharing one PostgreSQL (decision log and ruleset store, deploy/README.md) are given either as a list of
"IP:port" addresses, which become one static gRPC target (`ipv4:a:p,b:p` or `ipv6:[a]:p,[b]:p`), or as one DNS
name that resolves to all of them (`dns:///regelmotor-headless:50051`). Either way the channel uses gRPC's
`round_robin` policy: a connection to every address, calls spread over the connections that are up, and an
address whose connection failed left out until it is up again. A name in a list is refused: gRPC resolves one
name per target, and addresses the client looked up once would not follow the instances as they come and go.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Sequence

from .errors import ClientConfigError

# gRPC's default (pick_first) sends every call to the first address that answers; round_robin spreads them.
BALANCING: tuple[tuple[str, str], ...] = (
    ("grpc.service_config", json.dumps({"loadBalancingConfig": [{"round_robin": {}}]})),)


def channel_target(address: str | Sequence[str]) -> str:
    """The gRPC target for one address (as given) or for several "IP:port" addresses (a static address list)."""
    parts = [address] if isinstance(address, str) else list(address)
    parts = [part.strip() for part in parts]
    if not parts or not all(parts):
        raise ClientConfigError("address", "an address is empty")
    if len(parts) == 1:
        return parts[0]
    found = [_ip_and_port(part) for part in parts]
    if len({ip.version for ip, _ in found}) > 1:
        raise ClientConfigError("address", "IPv4 and IPv6 addresses cannot be balanced in one list; give one family")
    if found[0][0].version == 4:
        return "ipv4:" + ",".join(f"{ip}:{port}" for ip, port in found)
    return "ipv6:" + ",".join(f"[{ip}]:{port}" for ip, port in found)


def _ip_and_port(part: str) -> tuple[ipaddress.IPv4Address | ipaddress.IPv6Address, int]:
    host, _, port = part.rpartition(":")
    try:
        ip = ipaddress.ip_address(host[1:-1] if host.startswith("[") and host.endswith("]") else host)
        number = int(port)
    except ValueError:
        ip, number = None, 0
    if ip is None or not 0 < number < 65536:
        raise ClientConfigError("address", f"{part!r} is not an IP address with a port: several instances are given "
                                           "as IP:port each, or as one DNS name that resolves to all of them "
                                           "(dns:///name:port)")
    return ip, number


def is_loopback_target(target: str) -> bool:
    """Whether a gRPC target stays on this machine: a unix socket, or localhost and loopback IPs only (every
    address of a list)."""
    if target.startswith(("unix:", "unix-abstract:")):
        return True
    body = target.removeprefix("dns:").removeprefix("ipv4:").removeprefix("ipv6:").lstrip("/")
    return all(_is_loopback_host(part) for part in body.split(","))


def _is_loopback_host(address: str) -> bool:
    if address.startswith("["):  # [::1]:50051
        host = address[1:address.find("]")]
    elif address.count(":") == 1:  # host:port
        host = address.split(":")[0]
    else:  # a bare host or IPv6 address
        host = address
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
