"""Free loopback ports for local services.

SeaweedFS listens on each of its ports and on port + 10000 (gRPC), so a port is
only handed out when both are free, and it stays below 55535 so port + 10000 is
a valid port. Ports are probed by binding 127.0.0.1; a port handed out once in
this process is not handed out again, so services started one after another do
not collide before they bind.
"""

from __future__ import annotations

import random
import socket
import threading

GRPC_OFFSET = 10000
LOW = 15000
HIGH = 32000  # below the kernel ephemeral range; port + 10000 stays below 55535 + 10000

_given: set[int] = set()
_lock = threading.Lock()


def is_free(port: int, host: str = "127.0.0.1") -> bool:
    """True if ``host:port`` can be bound right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def free_port(with_grpc: bool = True, attempts: int = 500) -> int:
    """A free loopback port below 55535; with ``with_grpc`` port + 10000 is free too."""
    with _lock:
        for _ in range(attempts):
            port = random.randint(LOW, HIGH)
            if port in _given or (with_grpc and port + GRPC_OFFSET in _given):
                continue
            if is_free(port) and (not with_grpc or is_free(port + GRPC_OFFSET)):
                _given.add(port)
                if with_grpc:
                    _given.add(port + GRPC_OFFSET)
                return port
    raise RuntimeError(f"no free loopback port pair found in {attempts} attempts; is the machine out of ports?")


def free_ports(count: int, with_grpc: bool = True) -> list[int]:
    """``count`` distinct free ports (see ``free_port``)."""
    return [free_port(with_grpc) for _ in range(count)]
