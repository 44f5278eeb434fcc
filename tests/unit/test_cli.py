"""The command line without root: validate, plan and draw; bad input exits 2 with the reason."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def cdnlab(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cdnlab.cli", *args], capture_output=True,
                          text=True, check=False)


def test_validate_reports_counts() -> None:
    done = cdnlab("topo", "validate", "two_isp_ixp")
    assert done.returncode == 0, done.stderr
    assert "ok — two_isp_ixp: 23 nodes (14 hosts), 22 links" in done.stdout


def test_validate_bad_file_exits_2_naming_file_link_and_fix(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("nodes: {c1: client, r1: isp}\nlinks:\n  - {a: c1, b: r2}\n")
    done = cdnlab("topo", "validate", str(path))
    assert done.returncode == 2
    assert done.stderr.startswith(f"cdnlab: {path}: links[0] (c1--r2): unknown node 'r2'")
    assert "fix:" in done.stderr and "Traceback" not in done.stderr


def test_family_parameters_from_the_command_line() -> None:
    done = cdnlab("topo", "validate", "isp_mesh", "--param", "isps=5", "--param", "ixps=1")
    assert done.returncode == 0, done.stderr
    assert "isp_mesh_5x1x4x1" in done.stdout
    bad = cdnlab("topo", "validate", "isp_mesh", "--param", "isps")
    assert bad.returncode == 2 and "expected key=value" in bad.stderr


def test_plan_prints_the_rtt_matrix() -> None:
    done = cdnlab("topo", "plan", "two_isp_ixp")
    assert done.returncode == 0, done.stderr
    row = next(line for line in done.stdout.splitlines() if line.strip().startswith("b1 "))
    assert row.split()[1:] == ["48.0", "26.0", "26.0", "17.0", "17.0", "48.0", "48.0"]


def test_draw_writes_a_png(tmp_path: Path) -> None:
    out = tmp_path / "topo.png"
    done = cdnlab("topo", "draw", "minimal", "-o", str(out))
    assert done.returncode == 0, done.stderr
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert out.stat().st_size > 10_000


def test_a_command_after_dashes_belongs_to_vm_run_only() -> None:
    missing = cdnlab("vm", "run", "--always")
    assert missing.returncode == 2 and "give the command to run in the guest" in missing.stderr
    extra = cdnlab("vm", "test", "--", "pytest")
    assert extra.returncode == 2 and "use cdnlab vm run -- CMD" in extra.stderr
    stray = cdnlab("validate", "youtube_pull", "--", "x")
    assert stray.returncode == 2 and "nothing takes a command after --" in stray.stderr


def test_version_and_yaml_values_in_set() -> None:
    done = cdnlab("--version")
    assert done.returncode == 0 and done.stdout.startswith("cdnlab ")
    mapping = cdnlab("validate", "youtube_pull", "--set", "workload.viewers={a1: 2, b1: 1}",
                     "--set", "dns.ttl=9")
    assert mapping.returncode == 0, mapping.stderr
    assert "3 viewers" in mapping.stdout and "TTL 9 s" in mapping.stdout
    broken = cdnlab("validate", "youtube_pull", "--set", "workload.viewers={a1: 2")
    assert broken.returncode == 2 and "not valid YAML" in broken.stderr


def test_unknown_names_get_the_nearest_known_one() -> None:
    for args, hint in ((["validate", "youtube_pul"], "did you mean 'youtube_pull'?"),
                       (["validate", "youtube_pull", "--set", "dns.polcy=min_rtt"],
                        "did you mean 'policy'?"),
                       (["topo", "validate", "two_isp_ixpp"], "did you mean 'two_isp_ixp'?"),
                       (["validate", "youtube_pull", "--set",
                         "timeline=[{at: 5, cluster_down: edgea}]"],
                        "did you mean 'edge_a'?")):
        done = cdnlab(*args)
        assert done.returncode == 2 and hint in done.stderr, (args, done.stderr)
    far = cdnlab("validate", "zzzz")
    assert "did you mean" not in far.stderr and "known shipped scenarios:" in far.stderr


def test_an_event_after_duration_s_is_refused() -> None:
    done = cdnlab("validate", "youtube_pull", "--set",
                  "timeline=[{at: 50, cluster_down: edge_a}]")
    assert done.returncode == 2
    assert "timeline[0].at: cluster_down at 50 s is after duration_s 30" in done.stderr


def test_json_has_one_shape_and_stdout_holds_it_alone(tmp_path: Path) -> None:
    """`--json` on commands that print figures: one document, {cdnlab, command, ok, data}."""
    import json

    listing = json.loads(cdnlab("list", "--json").stdout)
    assert set(listing) == {"cdnlab", "command", "ok", "data"} and listing["ok"]
    assert "youtube_pull" in listing["data"]["scenarios"]
    simulated = cdnlab("abr", "simulate", "--trace", "step_down.csv", "--algo", "bba",
                       "--duration", "20", "--json")
    document = json.loads(simulated.stdout)
    assert document["command"] == "abr simulate" and document["data"][0]["algo"] == "bba"
    bundles = []
    for name, rebuffer in (("a", 1.0), ("b", 3.0)):
        root = tmp_path / name
        root.mkdir()
        (root / "run.json").write_text(json.dumps({"seed": 1}))
        (root / "summary.json").write_text(json.dumps({"players": {
            "rebuffer_s_total": rebuffer}}))
        bundles.append(str(root))
    compared = json.loads(cdnlab("compare", *bundles, "--json").stdout)
    assert compared["data"]["figures"]["rebuffer s (total)"] == [1.0, 3.0]


def test_bench_result_lines_become_mappings() -> None:
    from cdnlab.jsonout import result_lines

    printed = ("fidelity: backend=netem rtt_err_max=1.25% rate_err_max=–% loss_err_max=0.10pp\n"
               "some table\nfidelity: backend=nfqueue rtt_err_max=0.50% rate_err_max=2.00% "
               "loss_err_max=0.00pp\n")
    assert result_lines(printed, "fidelity") == [
        {"backend": "netem", "rtt_err_max": 1.25, "rate_err_max": None, "loss_err_max": 0.1},
        {"backend": "nfqueue", "rtt_err_max": 0.5, "rate_err_max": 2.0, "loss_err_max": 0.0}]
