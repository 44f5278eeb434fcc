"""The `cdnlab` command line: one entry point for every stage of the engine.

    cdnlab doctor [--fix]                   what this machine offers, and the fixes
    cdnlab topo validate|plan|draw TOPO     check a topology; show its addresses, routes, RTTs
    cdnlab topo check TOPO                  bring it up, ping all, print fidelity, tear down
    cdnlab topo up TOPO                     bring it up with Mininet's CLI
    cdnlab validate SCENARIO                check a scenario file (no root)
    cdnlab list [--json]                    the shipped scenarios, topologies and traces
    cdnlab run SCENARIO [--out D] [--seed N] [--set k=v] [--repeat N]   replay it; a bundle
    cdnlab report DIR | compare DIR DIR…    rebuild a bundle's report; runs side by side,
                                            with deltas and the settings that differed
    cdnlab content ingest|synth|testsrc …   transcode and publish titles into a content store
    cdnlab abr simulate --trace F --algo A  ABR algorithms over a bandwidth trace, offline
    cdnlab bench fidelity [--quick]         configured vs measured, per shaping backend
    cdnlab bench transcode                  encode speed per profile, against decoding
    cdnlab bench dns                        redirector queries/s and p99, beside Knot
    cdnlab bench wakeups                    timer lateness, CPUs idle against kept awake
    cdnlab bench scale [--quick]            viewers playing at once until the verdict breaks
    cdnlab bench shaping                    CPU per packet of a delayed hop, against forwarding
    cdnlab vm build | test | run -- CMD | cluster
                                          the real-kernel tier: Debian guests under QEMU
    cdnlab clean                            remove what interrupted runs recorded and left

User errors (a bad file, a missing feature) print one line naming the problem and the fix,
and exit 2.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from cdnlab import jsonout
from cdnlab.errors import CdnlabError, choices
from cdnlab.measure.reachability import unreachable
from cdnlab.net.cpu_awake import MODES
from cdnlab.vm.image import DEFAULT_CACHE as DEFAULT_VM_CACHE
from nodes.common.conventions import AUDIO_KBPS
from nodes.origin.errors import ContentError

CPU_AWAKE_HELP = ("keep the CPUs out of idle so timers fire on time: auto (where that "
                  "is measured to halve the late wake-ups), on or off")


def _params(pairs: list[str], option: str = "--param") -> dict[str, Any]:
    """`key=value` pairs; each value is read as YAML (so `10`, `true`, `[a, b]` and
    `{isp_a: 50}` are a number, a boolean, a list and a mapping), a bare word a string."""
    params: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise CdnlabError(f"{option} {pair!r}: expected key=value, e.g. "
                              f"{option} {'dns.ttl=10' if option == '--set' else 'isps=4'}")
        try:
            params[key] = yaml.safe_load(value) if value.strip() else value
        except yaml.YAMLError as err:
            mark = getattr(err, "problem", None) or str(err).splitlines()[0]
            raise CdnlabError(f"{option} {pair!r}: the value is not valid YAML ({mark}); "
                              "quote the whole option, e.g. --set 'workload.viewers={isp_a: "
                              "50}'") from None
    return params


def _load(args: argparse.Namespace) -> Any:
    from cdnlab.topology import load_topology

    return load_topology(args.topology, _params(args.param) or None)


def cmd_doctor(args: argparse.Namespace) -> int:
    from cdnlab import doctor

    if not args.json:
        return doctor.run(args.fix, False)
    with jsonout.people_output_to_stderr() as printed:
        code = doctor.run(args.fix, True)
    print(jsonout.envelope("doctor", code == 0, json.loads(printed.getvalue())))
    return code


def cmd_topo_validate(args: argparse.Namespace) -> int:
    topology = _load(args)
    hosts = topology.hosts()
    print(f"{topology.source}: ok — {topology.name}: {len(topology.nodes)} nodes "
          f"({len(hosts)} hosts), {len(topology.links)} links")
    return 0


def cmd_topo_plan(args: argparse.Namespace) -> int:
    from cdnlab.topology.addressing import plan_addresses
    from cdnlab.topology.routing import Routing

    topology = _load(args)
    plan = plan_addresses(topology)
    routing = Routing(topology, plan)
    print(f"{topology.name}: segments")
    for segment in plan.segments:
        members = ", ".join(f"{n}={plan.interface(n, i).address}" for n, i in segment.members)
        print(f"  {segment.subnet}: {members}")
    clients = topology.by_role("client")
    targets = [n.name for n in topology.nodes.values() if n.cluster or n.role == "origin"]
    if clients and targets:
        print("expected RTT (ms), client → server")
        print("  " + " " * 10 + "".join(f"{t:>10}" for t in targets))
        for client in clients:
            print(f"  {client:<10}" + "".join(f"{routing.expected_rtt_ms(client, t):>10.1f}"
                                              for t in targets))
    return 0


def cmd_topo_draw(args: argparse.Namespace) -> int:
    from cdnlab.topology.draw import draw

    topology = _load(args)
    out = Path(args.out or f"{topology.name}.png")
    print(draw(topology, out))
    return 0


def _emulation(args: argparse.Namespace, topology: Any) -> Any:
    from cdnlab.net.emulation import Emulation

    return Emulation(topology, shaping=args.shaping, datapath=args.datapath, seed=args.seed,
                     controller=getattr(args, "controller", None), cpu_awake=args.cpu_awake)


def cmd_topo_check(args: argparse.Namespace) -> int:
    if not args.json:
        return _topo_check(args)[0]
    with jsonout.people_output_to_stderr():
        code, report = _topo_check(args)
    print(jsonout.envelope("topo check", code == 0, report))
    return code


def _topo_check(args: argparse.Namespace) -> tuple[int, dict[str, Any]]:
    from cdnlab.measure import fidelity

    topology = _load(args)
    started = time.monotonic()
    with _emulation(args, topology) as emu:
        print(f"{topology.name}: up in {time.monotonic() - started:.1f} s "
              f"({emu.shaping} shaping, {emu.datapath} switches)")
        bgp = emu.bgp.describe() if emu.bgp is not None else None
        if bgp is not None:
            print(f"bgp: {len(bgp['asns'])} routers in {len(set(bgp['asns'].values()))} ASes, "
                  f"{bgp['sessions']} sessions, converged in {bgp['convergence_s']:.1f} s")
            for server, serves in bgp["route_servers"].items():
                print(f"route server {server} (AS {serves['asn']}): "
                      f"{', '.join(serves['clients'])}")
            if bgp["anycast"] is not None:
                print(f"anycast {bgp['anycast']['address']}: " + ", ".join(
                    f"{client} → {cluster}"
                    for client, cluster in bgp["anycast"]["catchments"].items()))
        failed = unreachable(emu)
        pairs = len(topology.hosts()) * (len(topology.hosts()) - 1)
        print(f"connectivity: {pairs - len(failed)}/{pairs} host pairs reach each other")
        for src, dst in failed:
            print(f"  unreachable: {src} → {dst}")
        differences = list(emu.route_differences)
        routes = sum(len(r) for r in emu.routing.routes.values())
        print(f"routes: {routes} read back from the kernels, "
              + (f"{len(differences)} unlike the plan:" if differences else "all as planned"))
        for line in differences:
            print(f"  {line}")
        report = fidelity.check(emu, goodput_samples=0 if args.no_goodput else 2)
        print(report.table())
        if not report.ok:  # a busy moment spoils what it meets; a wrong shape misses again
            missed = sum(not s.ok for s in report.rtt) + sum(not r.ok for r in report.rate)
            print(f"measured again: the {missed} sample(s) that missed their bounds")
            fidelity.rtt_misses_remeasured(emu, report)
            report.rate = fidelity.rate_remeasured_on_miss(emu, report.rate)
            print(report.table())
        if args.controller:
            counted = _controller_check(emu, topology, pairs, failed)
    summary = report.summary()
    print(f"fidelity: backend={summary['backend']} "
          f"rtt_err_max={fidelity.shown(summary['rtt_err_max_pct'])}% "
          f"({fidelity.shown(summary['rtt_err_max_ms'])} ms) "
          f"rate_err_max={fidelity.shown(summary['rate_err_max_pct'])}% "
          f"within_bounds={'yes' if report.ok else 'no'}")
    print("torn down: nothing left behind")
    if args.controller:
        print(f"controller: connectivity={counted['connectivity']:.1f}% "
              f"byte_err={counted['byte_err_pct']:.2f}%")
    return 0 if report.ok and not failed and not differences else 1, report.to_dict() | {
        "unreachable": [list(pair) for pair in failed], "route_differences": differences,
        "controller": counted if args.controller else None, "bgp": bgp}


def _controller_check(emu: Any, topology: Any, pairs: int,
                      failed: list[tuple[str, str]]) -> dict[str, Any]:
    from cdnlab.measure.transfer import counted_transfer

    client = topology.by_role("client")[0]
    server = next(iter(topology.clusters().values()))[0]
    counted = counted_transfer(emu, client, server)
    print(f"counted transfer {client} → {server}: iperf3 sent {counted['iperf_bytes']} B; "
          f"the controller counted {counted['counted_bytes']} B entering {counted['switch']} "
          f"on {counted['port']} (link {counted['link']}): {counted['byte_err_pct']:+.2f} %")
    counted["connectivity"] = 100.0 * (pairs - len(failed)) / pairs if pairs else 0.0
    return counted


def cmd_topo_up(args: argparse.Namespace) -> int:
    from mininet.cli import CLI

    topology = _load(args)
    with _emulation(args, topology) as emu:
        for name in topology.hosts():
            print(f"  {name:<10} {emu.ip(name)}")
        CLI(emu.net)
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    if not args.json:
        return _bench(args)
    with jsonout.people_output_to_stderr() as printed:
        code = _bench(args)
    print(jsonout.envelope(f"bench {args.what}", code == 0,
                           jsonout.result_lines(printed.getvalue(), args.what)))
    return code


def _bench(args: argparse.Namespace) -> int:
    if args.what == "fidelity":
        from cdnlab.bench import fidelity as bench_fidelity

        return bench_fidelity.run(args.shaping, args.quick, args.cpu_awake)
    if args.what == "transcode":
        from cdnlab.bench import transcode as bench_transcode

        return bench_transcode.run(args.seconds or 6.0, args.size, args.profiles.split(","))
    if args.what == "dns":
        from cdnlab.bench import dns as bench_dns

        return bench_dns.run(args.seconds or 10.0, args.rounds)
    if args.what == "scale":
        from cdnlab.bench import scale as bench_scale

        shaping = "auto" if args.shaping == "all" else args.shaping
        keep = Path(args.keep) if args.keep else None
        try:
            return bench_scale.run(args.quick, shaping, args.cpu_awake, args.max_viewers, keep)
        except ValueError as error:
            print(f"cdnlab bench scale: {error}", file=sys.stderr)
            return 2
    if args.what == "edge":
        from cdnlab.bench import edge as bench_edge

        return bench_edge.run(args.seconds or 5.0)
    if args.what == "shaping":
        from cdnlab.bench import shaping as bench_shaping

        return bench_shaping.run(args.rounds, args.seconds or 5.0)
    if args.what == "wakeups":
        from cdnlab.bench import wakeups as bench_wakeups

        return bench_wakeups.run(args.samples)
    raise CdnlabError(f"unknown benchmark {args.what!r}")


def cmd_content(args: argparse.Namespace) -> int:
    """The origin's own command line (nodes.origin), reached as `cdnlab content …`."""
    from nodes.origin.__main__ import main as origin_main

    return origin_main([args.action, *args.rest])


def cmd_abr_simulate(args: argparse.Namespace) -> int:
    from cdnlab import abrsim

    settings = abrsim.Settings(args.max_buffer, args.rtt_ms, args.initial_kbps,
                               0.0 if args.no_audio else args.audio_kbps, _params(args.param))
    return abrsim.run(args.trace, args.algo, args.store, args.title, args.profile,
                      args.duration, args.segment, settings, args.json)


def _scenario(args: argparse.Namespace) -> Any:
    from cdnlab.scenario.spec import load_scenario, variant_overrides

    overrides = _params(args.set, "--set") if getattr(args, "set", None) else {}
    if getattr(args, "seed", None) is not None:
        overrides["seed"] = args.seed
    scenario = load_scenario(args.scenario, overrides)
    variant = getattr(args, "variant", None)
    if variant is not None:
        if variant not in scenario.variants:
            raise CdnlabError(f"{args.scenario} has no variant {variant!r}; "
                              + choices(variant, scenario.variants, "variants"))
        scenario = load_scenario(args.scenario, overrides | variant_overrides(
            variant, scenario.variants[variant]))
    if getattr(args, "cluster", None):  # the command line's machines over the files'
        from cdnlab.machines.spec import parse_machines

        scenario.topology.machines = parse_machines(args.cluster).over(
            scenario.topology.machines)
    return scenario


def cmd_list(args: argparse.Namespace) -> int:
    """What ships with cdnlab, found through its packages (so also when installed)."""
    from importlib import resources

    from cdnlab.scenario.spec import SCENARIOS_DIR
    from cdnlab.topology.spec import topologies_dir

    shipped = {
        "scenarios": sorted(p.stem for p in SCENARIOS_DIR.glob("*.yaml")),
        "topologies": sorted(p.stem for p in topologies_dir().glob("*.yaml")),
        "traces": sorted(p.name for p in Path(str(resources.files("traces"))).iterdir()
                         if p.suffix in (".csv", ".mahi")),
    }
    if args.json:
        print(jsonout.envelope("list", True, shipped))
        return 0
    for kind, names in shipped.items():
        print(f"{kind}: {', '.join(names)}")
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    scenario = _scenario(args)
    viewers = sum(scenario.workload.viewers.values())
    print(f"{scenario.source}: ok — {scenario.name}: {scenario.topology.name}, "
          f"{scenario.cdn.mode} mode, {scenario.dns.policy} (TTL {scenario.dns.ttl} s), "
          f"{viewers} viewers, {len(scenario.timeline)} events, seed {scenario.seed}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    if args.repeat < 1:
        raise CdnlabError(f"--repeat {args.repeat}: give the number of runs, 1 or more")
    if not args.json:
        return _run_chosen(args)
    with jsonout.people_output_to_stderr():
        code = _run_chosen(args)
    root = Path(args.last_bundle) if getattr(args, "last_bundle", None) else None
    data: dict[str, Any] = {"bundle": str(root) if root else None}
    if root is not None and (root / "repeat.json").exists():
        data["repeat"] = json.loads((root / "repeat.json").read_text())
    elif root is not None and (root / "variants.json").exists():
        data["variants"] = json.loads((root / "variants.json").read_text())
    elif root is not None and (root / "summary.json").exists():
        data["summary"] = json.loads((root / "summary.json").read_text())
    print(jsonout.envelope("run", code == 0, data))
    return code


def _run_chosen(args: argparse.Namespace) -> int:
    """One run, `--repeat N` runs, or a scenario's variants (all, or `--variant NAME`)."""
    if args.variant is None and _scenario(args).variants:
        if args.repeat > 1:
            raise CdnlabError("--repeat with a scenario that has variants: give --variant "
                              "NAME to repeat one of them")
        return _run_variants(args)
    return _run_repeated(args) if args.repeat > 1 else \
        _run_once(args, Path(args.out) if args.out else None)


def _run_variants(args: argparse.Namespace) -> int:
    """Every variant of the scenario, each its own bundle under one directory, then the
    comparison (`cdnlab/results/variants.py`)."""
    from cdnlab.results.variants import variants_report, variants_table
    from cdnlab.scenario.runner import results_dir

    scenario = _scenario(args)
    root = results_dir(scenario, Path(args.out) if args.out else None)
    bundles = {}
    for number, name in enumerate(scenario.variants, 1):
        bundle = root / name
        print(f"— variant {number} of {len(scenario.variants)}: {name} ({bundle})", flush=True)
        args.variant = name
        code = _run_once(args, bundle)
        if code:
            return code
        bundles[name] = bundle
    args.variant = None
    report = variants_report(root, bundles)
    args.last_bundle = str(root)
    print(variants_table(report["variants"]))
    print(f"variants: {root / 'variants.md'}")
    return 0


def _run_repeated(args: argparse.Namespace) -> int:
    """`--repeat N`: N runs of the same scenario and seed, each its own bundle under one
    directory, then the key figures' mean and 95 % confidence interval."""
    from cdnlab.results.repeat import repeat_report, repeat_table, settings_lines
    from cdnlab.scenario.runner import results_dir

    root = results_dir(_scenario(args), Path(args.out) if args.out else None)
    bundles = []
    for number in range(1, args.repeat + 1):
        bundle = root / f"run-{number}"
        print(f"— run {number} of {args.repeat}: {bundle}", flush=True)
        code = _run_once(args, bundle)
        if code:
            return code
        bundles.append(bundle)
    report = repeat_report(root, bundles)
    args.last_bundle = str(root)
    print(repeat_table(report["figures"]))
    print("\n".join(settings_lines(report["settings_that_differed"])))
    print(f"repeat: {root / 'repeat.md'}")
    return 0


def _run_once(args: argparse.Namespace, out: Path | None) -> int:
    from cdnlab.results.faults import fault_lines
    from cdnlab.results.report import table, write_report
    from cdnlab.scenario.runner import Run

    scenario = _scenario(args)
    run = Run(scenario, out, cpu_awake=args.cpu_awake)
    args.last_bundle = str(run.bundle)
    try:
        run.execute()
    finally:  # also after a failure or Ctrl-C: write what there is
        if run.bundle.joinpath("run.json").exists():
            summary = write_report(run.bundle)
            print(table([(scenario.name, summary)]))
            print(f"fidelity: {(summary.get('fidelity') or {}).get('verdict', 'not measured')}")
            for line in fault_lines(summary.get("faults")):
                print(f"fault: {line}")
            print(f"results: {run.bundle}")
    if run.interrupted == "interrupted":
        return 130
    return 1 if run.interrupted else 0


def cmd_report(args: argparse.Namespace) -> int:
    from cdnlab.results.report import write_report

    root = Path(args.bundle)
    if not (root / "run.json").is_file():
        raise CdnlabError(f"{root}: not a results bundle (no run.json)")
    write_report(root)
    print(root / "report.md")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from cdnlab.results.repeat import compare, compare_data

    for root in args.bundles:
        if not (Path(root) / "run.json").is_file():
            raise CdnlabError(f"{root}: not a results bundle (no run.json)")
    roots = [Path(b) for b in args.bundles]
    if args.json:
        print(jsonout.envelope("compare", True, compare_data(roots)))
        return 0
    print(compare(roots))
    return 0


def cmd_vm(args: argparse.Namespace) -> int:
    from cdnlab.vm import tier

    cache = Path(args.cache)
    if args.action == "build":
        return tier.build(cache, args.rebuild)
    if args.action == "cluster":
        from cdnlab.vm import cluster

        return cluster.run(cache, args.rebuild, max(args.timeout, 1800.0),
                           echo=not args.quiet)
    command = list(args.after_dashes)
    if args.action == "run" and not command:
        raise CdnlabError("cdnlab vm run: give the command to run in the guest after --, "
                          "e.g. cdnlab vm run -- pytest -x -k jitter tests/net")
    if args.action == "test" and command:
        raise CdnlabError(f"cdnlab vm test takes no command ({' '.join(command)}); "
                          "use cdnlab vm run -- CMD")
    return tier.test(cache, args.rebuild, args.timeout, echo=not args.quiet,
                     always=args.always, command=command or None)


def cmd_clean(_args: argparse.Namespace) -> int:
    from cdnlab.net.ledger import clean_stale

    removed = clean_stale()
    for line in removed:
        print(f"removed {line}")
    print(f"clean: {len(removed)} leftover item(s) removed")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cdnlab", description="CDN emulation testbed")
    parser.add_argument("--version", action="version", version=f"cdnlab {jsonout.version()}")
    sub = parser.add_subparsers(dest="command", required=True)

    doctor = sub.add_parser("doctor", help="what this machine offers, and the fixes")
    doctor.add_argument("--fix", action="store_true", help="start Open vSwitch if needed")
    doctor.add_argument("--json", action="store_true")
    doctor.set_defaults(func=cmd_doctor)

    topo = sub.add_parser("topo", help="topologies").add_subparsers(dest="action", required=True)
    for name, func, helptext in (
            ("validate", cmd_topo_validate, "check a topology file"),
            ("plan", cmd_topo_plan, "addresses and expected RTTs"),
            ("draw", cmd_topo_draw, "write a PNG picture"),
            ("check", cmd_topo_check, "bring up, ping all, measure fidelity, tear down"),
            ("up", cmd_topo_up, "bring up with Mininet's CLI")):
        p = topo.add_parser(name, help=helptext)
        p.add_argument("topology", help="a shipped name (two_isp_ixp) or a YAML path")
        p.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                       help="parameter of a parametric family")
        p.set_defaults(func=func)
        if name == "draw":
            p.add_argument("-o", "--out", help="PNG path (default <name>.png)")
        if name in ("check", "up"):
            p.add_argument("--shaping", default="auto", help="auto, netem or nfqueue")
            p.add_argument("--datapath", default="auto", help="auto, kernel, user or bridge")
            p.add_argument("--seed", type=int, default=1)
            p.add_argument("--cpu-awake", default="auto", choices=MODES, help=CPU_AWAKE_HELP)
        if name in ("check", "up"):
            p.add_argument("--controller", choices=["os-ken"],
                           help="run the switches from an OpenFlow controller")
        if name == "check":
            p.add_argument("--json", action="store_true",
                           help="print the fidelity report as JSON (see cdnlab/jsonout.py)")
            p.add_argument("--no-goodput", action="store_true", help="RTT only (faster)")

    listing = sub.add_parser("list", help="the shipped scenarios, topologies and traces")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(func=cmd_list)
    validate = sub.add_parser("validate", help="check a scenario file")
    validate.add_argument("scenario")
    validate.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    validate.set_defaults(func=cmd_validate)
    run = sub.add_parser("run", help="replay a scenario, write a results bundle")
    run.add_argument("scenario", help="a YAML path or a shipped name (youtube_pull)")
    run.add_argument("--out", help="bundle directory (default results/<name>-<time>)")
    run.add_argument("--seed", type=int)
    run.add_argument("--cpu-awake", default="auto", choices=MODES, help=CPU_AWAKE_HELP)
    run.add_argument("--cluster", metavar="[USER@]HOST[,…]",
                     help="split the run over these machines too (Mininet Cluster Edition "
                          "over ssh; --out on storage they all share)")
    run.add_argument("--json", action="store_true",
                     help="print the summary as JSON at the end (see cdnlab/jsonout.py)")
    run.add_argument("--repeat", type=int, default=1,
                     help="run it N times (same seed): each figure's mean and 95 %% CI")
    run.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                     help="override a field, e.g. --set dns.ttl=10")
    run.add_argument("--variant", help="run only this one of the scenario's variants")
    run.set_defaults(func=cmd_run)
    report = sub.add_parser("report", help="rebuild a bundle's summary, plots and report")
    report.add_argument("bundle")
    report.set_defaults(func=cmd_report)
    compare = sub.add_parser("compare", help="key figures of several runs side by side")
    compare.add_argument("bundles", nargs="+")
    compare.add_argument("--json", action="store_true",
                         help="the figures and settings as JSON (see cdnlab/jsonout.py)")
    compare.set_defaults(func=cmd_compare)

    content = sub.add_parser("content", help="ingest, transcode and synthesize titles",
                             description="ingest FILE --title ID --store DIR [--spec YAML] | "
                             "synth --titles N --store DIR | testsrc OUT "
                             "(see python -m nodes.origin --help)")
    content.add_argument("action", choices=["ingest", "synth", "testsrc"])
    content.add_argument("rest", nargs=argparse.REMAINDER)
    content.set_defaults(func=cmd_content)

    abr = sub.add_parser("abr", help="ABR algorithms").add_subparsers(dest="action",
                                                                      required=True)
    simulate = abr.add_parser("simulate", help="replay a bandwidth trace offline")
    simulate.add_argument("--trace", required=True, help="CSV or Mahimahi trace")
    simulate.add_argument("--algo", default="all",
                          help="throughput, bba, bola, mpc, dynamic, fixed, or all")
    simulate.add_argument("--store", help="content store holding --title")
    simulate.add_argument("--title", help="a catalog title (default: the default ladder)")
    simulate.add_argument("--profile", default="avc")
    simulate.add_argument("--duration", type=float, default=300.0,
                          help="seconds of video without --title")
    simulate.add_argument("--segment", type=float, default=4.0,
                          help="segment seconds without --title")
    simulate.add_argument("--max-buffer", type=float, default=30.0)
    simulate.add_argument("--rtt-ms", type=float, default=0.0, help="added to each request")
    simulate.add_argument("--audio-kbps", type=float, default=AUDIO_KBPS,
                          help="the default ladder's audio track, fetched alongside video "
                               "(default %(default)s)")
    simulate.add_argument("--no-audio", action="store_true",
                          help="video only, as Sabre and Pensieve simulate")
    simulate.add_argument("--initial-kbps", type=float,
                          help="the first segment's throughput estimate, for every algorithm "
                               "that takes one (default: each algorithm's own)")
    simulate.add_argument("--param", action="append", default=[],
                          help="an algorithm parameter, key=value (e.g. gp=3), given to every "
                               "algorithm that has it")
    simulate.add_argument("--json", action="store_true")
    simulate.set_defaults(func=cmd_abr_simulate)

    bench = sub.add_parser("bench", help="benchmarks")
    bench.add_argument("what", choices=["fidelity", "transcode", "dns", "wakeups", "scale",
                                        "edge", "shaping"])
    bench.add_argument("--quick", action="store_true", help="a subset, under a minute")
    bench.add_argument("--shaping", default="all",
                       help="fidelity: all, netem or nfqueue; scale: auto, netem or nfqueue")
    bench.add_argument("--seconds", type=float,
                       help="transcode: master length (6); dns: dnsperf time per server (10); "
                            "edge: seconds a phase (5); shaping: seconds a transfer (5)")
    bench.add_argument("--rounds", type=int, default=3,
                       help="dns: rounds, each server in turn; medians are reported (3); "
                            "shaping: transfers on each path (3)")
    bench.add_argument("--size", default="1280x720", help="transcode: master size")
    bench.add_argument("--profiles", default="avc,vp9,hevc", help="transcode: profiles")
    bench.add_argument("--cpu-awake", default="auto", choices=MODES,
                       help="fidelity: " + CPU_AWAKE_HELP)
    bench.add_argument("--samples", type=int, default=2000, help="wakeups: sleeps per row")
    bench.add_argument("--max-viewers", type=int, help="scale: the last step at most")
    bench.add_argument("--keep", metavar="DIR",
                       help="scale: keep each step's results bundle in DIR (a new directory)")
    bench.add_argument("--json", action="store_true",
                       help="print the result lines as JSON (see cdnlab/jsonout.py)")
    bench.set_defaults(func=cmd_bench)

    vm = sub.add_parser("vm", help="the real-kernel test tier (QEMU guest with netem, OVS)")
    vm.add_argument("action", choices=["build", "test", "run", "cluster"],
                    help="build: the guest image only; test: build or reuse it and run the "
                         "tier; run -- CMD: one command in the guest's tree instead; "
                         "cluster: quick_pull split across two guests (make clustertest)")
    vm.add_argument("--cache", default=str(DEFAULT_VM_CACHE), help="where images are kept")
    vm.add_argument("--rebuild", action="store_true", help="build even if cached")
    vm.add_argument("--timeout", type=float, default=900.0, help="seconds the guest may run")
    vm.add_argument("--quiet", action="store_true", help="do not echo the guest's console")
    vm.add_argument("--always", action="store_true",
                    help="boot the guest even if this kernel has netem and openvswitch")
    vm.set_defaults(func=cmd_vm)

    clean = sub.add_parser("clean", help="remove what interrupted runs left")
    clean.set_defaults(func=cmd_clean)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    after_dashes: list[str] = []
    if "--" in argv:  # `cdnlab vm run [options] -- CMD …`: CMD is not ours to parse
        cut = argv.index("--")
        argv, after_dashes = argv[:cut], argv[cut + 1:]
    args = build_parser().parse_args(argv)
    if after_dashes and getattr(args, "func", None) is not cmd_vm:
        print(f"cdnlab: nothing takes a command after -- here ({' '.join(after_dashes)})",
              file=sys.stderr)
        return 2
    args.after_dashes = after_dashes
    try:
        return int(args.func(args))
    except (CdnlabError, ContentError) as exc:
        print(f"cdnlab: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("cdnlab: interrupted; everything this run created was removed", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
