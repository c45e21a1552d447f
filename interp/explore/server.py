"""Serve an explorer with uvicorn, on the loopback interface unless told otherwise."""

import ipaddress
import sys
from typing import Optional

from interp.explore.queries import Limits
from interp.explore.subjects import Registry

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765


def is_loopback(host: str) -> bool:
    """Whether ``host`` is reachable from this machine only (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_port(port: int) -> None:
    if not 0 <= port <= 65535:
        raise ValueError(f"--port {port} is out of range: use 1024 to 65535 (or 0 for any free port)")


def serve(registry: Registry, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, limits: Limits = Limits(),
          log_level: str = "warning", on_start: Optional[str] = None) -> None:
    """Run the explorer until interrupted; warns on stderr when ``host`` is not a loopback address."""
    import uvicorn

    from interp.explore.app import create_app

    check_port(port)
    if not is_loopback(host):
        print(f"warning: serving on {host}, so anyone who can reach this machine can run models on it; "
              f"the explorer has no login. Use --host {DEFAULT_HOST} to keep it to this machine.", file=sys.stderr)
    if on_start:
        print(on_start, file=sys.stderr)
    uvicorn.run(create_app(registry, limits), host=host, port=port, log_level=log_level)
