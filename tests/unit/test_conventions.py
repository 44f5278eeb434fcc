"""Each shared name and default has one owner (`nodes.common.conventions`): the registries
that hold the code and every reader of a configuration agree with it."""

from __future__ import annotations

from cdnlab.scenario.spec import Dns, Workload
from cdnlab.services.dns import DnsService
from nodes.client.algorithms import ALGORITHMS
from nodes.client.player import SessionSpec
from nodes.common import conventions
from nodes.dns.config import parse_config
from nodes.dns.policies import POLICIES


def test_registries_hold_exactly_the_shared_names() -> None:
    assert tuple(ALGORITHMS) == conventions.ABR_ALGORITHMS
    assert tuple(POLICIES) == (*conventions.DNS_POLICIES, conventions.ANYCAST)


def test_the_scenario_and_the_redirector_default_alike() -> None:
    config = parse_config({"zone": conventions.ZONE, "services": {"video": None}})
    service = config.services[conventions.SERVICE]
    assert (Dns().policy, Dns().ttl) == (service.policy, service.ttl) == (
        conventions.DNS_POLICY, conventions.DNS_TTL_S)
    assert Dns().stale_after_s == config.settings.stale_after_s == conventions.STALE_AFTER_S
    assert Workload().abr == {conventions.ABR_DEFAULT: 1.0}
    assert Workload().max_buffer_s == SessionSpec("s", "t").max_buffer_s == \
        conventions.MAX_BUFFER_S


def test_the_engine_configures_the_redirector_with_the_shared_defaults() -> None:
    defaults = DnsService.__init__.__defaults__
    assert defaults is not None
    shared = (conventions.SERVICE_LABEL, conventions.DNS_POLICY, conventions.DNS_TTL_S,
              conventions.STALE_AFTER_S)
    assert defaults[1:5] == shared


def test_synthetic_title_names() -> None:
    assert conventions.title_names(3) == ["synth-0001", "synth-0002", "synth-0003"]
    assert conventions.title_names(12345)[0] == "synth-00001"
