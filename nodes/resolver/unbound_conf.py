"""unbound.conf for a resolver of the CDN zone: the zone is a stub to the redirector (cache
and answer TTLs as unbound keeps them), every other name refused so nothing leaves the
emulated network, and EDNS Client Subnet (RFC 7871) sent to the redirector when `ecs` is on.

Options followed, from unbound.conf(5) of unbound 1.17: `interface` and
`outgoing-interface` (it asks from its own address, which the redirector sees);
`stub-zone` with `stub-addr` ADDR@PORT; `local-zone: "." refuse` with the zone
`transparent` (the most specific local zone decides); ECS needs the `subnetcache` module
before `iterator` in `module-config`, `send-client-subnet` naming the authority that may
receive it and `max-client-subnet-ipv4` (24, unbound's default, the source prefix it
sends); answers are then cached per client subnet at the scope the authority returned.
`remote-control` on a Unix socket without certificates serves `unbound-control
stats_noreset`, with `extended-statistics` for the subnet cache's counts.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

SOCKET_PATH_MAX = 107  # sun_path, less its terminating NUL
ECS_SOURCE_PREFIX_V4 = 24


@dataclass(frozen=True)
class ResolverConfig:
    address: str
    zone: str  # e.g. cdn.lab.
    authority: str  # the redirector's address
    authority_port: int = 53
    port: int = 53
    ecs: bool = False
    work: Path = Path(".")

    @property
    def control_socket(self) -> Path:
        return self.work / "unbound.ctl"

    @property
    def path(self) -> Path:
        return self.work / "unbound.conf"


def render(config: ResolverConfig) -> str:
    if len(str(config.control_socket)) > SOCKET_PATH_MAX:
        raise ValueError(f"{config.control_socket}: longer than a Unix socket path may be "
                         f"({SOCKET_PATH_MAX}); use a shorter work directory")
    zone = config.zone if config.zone.endswith(".") else config.zone + "."
    ecs = [
        '    module-config: "subnetcache iterator"',
        f"    send-client-subnet: {config.authority}",
        f"    max-client-subnet-ipv4: {ECS_SOURCE_PREFIX_V4}",
    ] if config.ecs else ['    module-config: "iterator"']
    return "\n".join([
        "server:",
        f"    interface: {config.address}",
        f"    outgoing-interface: {config.address}",
        f"    port: {config.port}",
        "    do-ip6: no",
        '    username: ""',
        '    chroot: ""',
        f'    directory: "{config.work}"',
        f'    pidfile: "{config.work / "unbound.pid"}"',
        f'    logfile: "{config.work / "unbound.log"}"',
        "    use-syslog: no",
        "    verbosity: 1",
        "    log-replies: yes",
        "    extended-statistics: yes",
        "    access-control: 0.0.0.0/0 allow",
        "    do-not-query-localhost: no",
        "    qname-minimisation: no",
        "    prefetch: no",
        "    minimal-responses: yes",
        '    local-zone: "." refuse',
        f'    local-zone: "{zone}" transparent',
        *ecs,
        "",
        "stub-zone:",
        f'    name: "{zone}"',
        f"    stub-addr: {config.authority}@{config.authority_port}",
        "",
        "remote-control:",
        "    control-enable: yes",
        f'    control-interface: "{config.control_socket}"',
        "    control-use-cert: no",
        "",
    ])


def parse_stats(text: str) -> dict[str, float]:
    """`unbound-control stats_noreset` output (`name=value` lines) as numbers."""
    stats: dict[str, float] = {}
    for line in text.splitlines():
        name, sep, value = line.partition("=")
        if sep:
            try:
                stats[name.strip()] = float(value)
            except ValueError:
                continue
    return stats
