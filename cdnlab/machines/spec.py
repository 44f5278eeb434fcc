"""Which machines a run spreads over: `--cluster HOST[,HOST…]` or a `cluster:` section.

    cluster:
      machines: [10.0.9.2, 10.0.9.3]   # the other machines; this one (the head) is first
      user: root                        # ssh user on them (default: who ran sudo, else root)
      place: {origin: 10.0.9.2}         # nodes pinned to a machine; the rest are placed

The head is the machine the engine runs on (`localhost` in Mininet's terms): it runs the
engine, the monitor and the controller, and its run directory must be the same directory,
at the same path, on every machine (`cdnlab.machines.agent.check_shared`).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from typing import Any

from cdnlab.errors import SpecError, choices

HEAD = "localhost"
_HOSTNAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$")


@dataclass(frozen=True)
class MachineSet:
    others: tuple[str, ...]  # the other machines, by address or name, in the order given
    user: str | None = None
    place: dict[str, str] = field(default_factory=dict, compare=False)

    @property
    def machines(self) -> list[str]:
        """Every machine of the run, the head first."""
        return [HEAD, *self.others]

    def over(self, files: MachineSet | None) -> MachineSet:
        """These machines (from the command line) over a file's section: its user, and its
        pins that name one of these machines, are kept."""
        if files is None:
            return self
        place = {n: m for n, m in files.place.items() if m in self.machines}
        return MachineSet(self.others, self.user or files.user, place)

    def describe(self) -> dict[str, Any]:
        return {"machines": self.machines, "user": self.user, "place": dict(self.place)}


def _check_host(host: str, source: str, where: str) -> str:
    host = host.strip()
    try:
        ipaddress.IPv4Address(host)
        return host
    except ValueError:
        pass
    if not _HOSTNAME.match(host) or len(host) > 253:
        raise SpecError(source, where, f"{host!r} is not a machine address or host name",
                        "give IPv4 addresses or resolvable names, e.g. 10.0.9.2,10.0.9.3")
    return host


def parse_machines(text: str, source: str = "--cluster") -> MachineSet:
    """`[USER@]HOST[,[USER@]HOST…]` from the command line (one ssh user for all)."""
    entries = [h for h in (part.strip() for part in text.split(",")) if h]
    if not entries:
        raise SpecError(source, "", "no machine named", "e.g. --cluster 10.0.9.2")
    users = {entry.split("@", 1)[0] for entry in entries if "@" in entry}
    if len(users) > 1 or (users and not all("@" in e for e in entries)):
        raise SpecError(source, "", "the machines name different ssh users",
                        "log in as one user everywhere, e.g. root@10.0.9.2,root@10.0.9.3")
    hosts = [entry.split("@", 1)[-1] for entry in entries]
    return _machine_set(hosts, users.pop() if users else None, {}, source, "")


def parse_section(data: Any, source: str, nodes: set[str]) -> MachineSet:
    """A `cluster:` section of a topology or scenario."""
    where = "cluster"
    if not isinstance(data, dict):
        raise SpecError(source, where, "must be a mapping",
                        "e.g. cluster: {machines: [10.0.9.2]}")
    unknown = sorted(set(data) - {"machines", "user", "place"})
    if unknown:
        raise SpecError(source, f"{where}.{unknown[0]}", "unknown key",
                        "known keys: machines, user, place")
    hosts = data.get("machines")
    if isinstance(hosts, str):
        hosts = [h.strip() for h in hosts.split(",") if h.strip()]
    if not isinstance(hosts, list) or not hosts or not all(isinstance(h, str) for h in hosts):
        raise SpecError(source, f"{where}.machines", "must list at least one other machine",
                        "e.g. machines: [10.0.9.2]")
    user = data.get("user")
    if user is not None and (not isinstance(user, str) or not user.strip()):
        raise SpecError(source, f"{where}.user", "must be a user name", "e.g. user: root")
    place = data.get("place") or {}
    if not isinstance(place, dict):
        raise SpecError(source, f"{where}.place", "must map node names to machines",
                        "e.g. place: {origin: 10.0.9.2}")
    for node in place:
        if node not in nodes:
            raise SpecError(source, f"{where}.place.{node}", "unknown node",
                            choices(node, nodes, "nodes"))
    return _machine_set(hosts, user, {str(k): str(v) for k, v in place.items()}, source, where)


def _machine_set(hosts: list[str], user: str | None, place: dict[str, str], source: str,
                 where: str) -> MachineSet:
    checked: list[str] = []
    for host in hosts:
        host = _check_host(host, source, f"{where}.machines" if where else "")
        if host in (HEAD, "127.0.0.1"):
            continue  # the head is always a machine of the run
        if host in checked:
            raise SpecError(source, f"{where}.machines" if where else "",
                            f"machine {host} is named twice", "name each machine once")
        checked.append(host)
    if not checked:
        raise SpecError(source, f"{where}.machines" if where else "",
                        "names no machine besides this one",
                        "name the other machines, e.g. 10.0.9.2")
    known = [HEAD, *checked]
    for node, machine in place.items():
        if machine == "127.0.0.1":
            machine = place[node] = HEAD
        if machine not in known:
            raise SpecError(source, f"{where}.place.{node}", f"machine {machine!r} is not "
                            "one of the run's", choices(machine, known, "machines"))
    return MachineSet(tuple(checked), user.strip() if user else None, place)
