"""nginx run per emulated host, with its own config, pid, logs and temp directories.

Origin and edge servers are real nginx. Each gets a configuration rendered here into its
work directory: `daemon off`; one process (`master_process off`) where nothing needs more,
so the PID the node program holds is the one serving and dies with it, or a master with one
worker where a cache needs nginx's cache manager (`master=True`: the node program stops the
master, which ends its workers, and reports their PIDs so the engine's ledger holds them);
every temp path and the error log inside the work directory; DASH MIME types; the browser
headers below; cache lifetimes (an MPD 2 s, so a re-ingested title is seen within seconds;
segments a year, immutable: their names carry the version, see `nodes/origin/transcode.py`);
and one JSON line per request (with the CMCD data a player sent, CTA-5004 query mode):

    {"time": <epoch s>, "node", "event": "request", "client", "method", "path", "status",
     "bytes", "duration_s", "range", …site's own fields}
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from nodes.common.lifecycle import spawn_child

MIME_TYPES = {
    "application/dash+xml": "mpd",
    "video/iso.segment": "m4s",
    "video/mp4": "mp4",
    "video/webm": "webm",
    "audio/mp4": "m4a",
    "application/json": "json",
    "text/plain": "txt",
}
BASE_LOG_FIELDS = {
    "time": "$msec", "client": "\"$remote_addr\"", "method": "\"$request_method\"",
    "path": "\"$uri\"", "status": "$status", "bytes": "$body_bytes_sent",
    "duration_s": "$request_time", "range": "\"$http_range\"", "cmcd": "\"$arg_CMCD\"",
}
# What a page on another origin needs (Fetch standard, CORS protocol): one
# Access-Control-Allow-Origin; Timing-Allow-Origin so the Resource Timing dash.js measures
# throughput from is complete; the response headers a page may read. A preflight (a request
# with CMCD-* headers, CTA-5004's header mode, or other non-simple headers) gets 204 with the
# methods and headers allowed, cached a day by the browser.
CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Timing-Allow-Origin": "*",
    "Access-Control-Expose-Headers": "X-Cache-Status, X-Cluster, Content-Length, "
                                     "Content-Range, Age, CMSD-Static, CMSD-Dynamic",
}
PREFLIGHT_HEADERS = {
    "Access-Control-Allow-Methods": "GET, HEAD, OPTIONS",
    "Access-Control-Allow-Headers": "Range, CMCD-Request, CMCD-Object, CMCD-Status, "
                                    "CMCD-Session, Content-Type",
    "Access-Control-Max-Age": "86400",
}
MPD_MAX_AGE_S = 2


def add_headers(headers: dict[str, str], indent: str = "            ") -> str:
    """`add_header` lines, `always` (errors too). nginx drops a server's add_header lines in
    any location or `if` that has its own, so each such block lists every header."""
    return "".join(f'{indent}add_header {name} "{value}" always;\n'
                   for name, value in headers.items())


def preflight(extra: dict[str, str] | None = None, indent: str = "            ") -> str:
    """Answer a CORS preflight with 204 inside a location."""
    return (f"{indent}if ($request_method = OPTIONS) {{\n"
            + add_headers(CORS_HEADERS | PREFLIGHT_HEADERS | (extra or {}), indent + "    ")
            + f"{indent}    return 204;\n{indent}}}\n")


def hide_upstream_cors(indent: str = "            ") -> str:
    """A proxy adds its own CORS headers: the upstream's are dropped, never doubled."""
    return "".join(f"{indent}proxy_hide_header {name};\n" for name in CORS_HEADERS)


class NginxError(RuntimeError):
    pass


@dataclass
class NginxSite:
    node: str
    listen: str  # address:port
    work_dir: Path
    access_log: Path
    server_body: str  # root/locations of the one server block
    http_extra: str = ""
    log_fields: dict[str, str] = field(default_factory=dict)
    master: bool = False  # a master process (needed by proxy_cache's cache manager)
    modules: tuple[Path, ...] = ()  # dynamic modules to load (load_module)

    def render(self) -> str:
        fields = {"node": json.dumps(self.node), "event": '"request"', **BASE_LOG_FIELDS,
                  **self.log_fields}
        log = "{" + ",".join(f'"{k}":{v}' for k, v in fields.items()) + "}"
        types = "\n".join(f"        {mime} {ext};" for mime, ext in MIME_TYPES.items())
        temp = {name: self.work_dir / "tmp" / name for name in
                ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")}
        processes = "master_process on;\nuser root;" if self.master and os.geteuid() == 0 \
            else f"master_process {'on' if self.master else 'off'};"
        modules = "".join(f"load_module {m};\n" for m in self.modules)
        return f"""# rendered by cdnlab for node {self.node}
{modules}daemon off;
{processes}
worker_processes 1;
pid {self.work_dir / 'nginx.pid'};
error_log {self.work_dir / 'error.log'} warn;
events {{ worker_connections 4096; }}
http {{
    types {{
{types}
    }}
    default_type application/octet-stream;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 100000;
    keepalive_timeout 120s;
    server_tokens off;
    client_body_temp_path {temp['client_body']};
    proxy_temp_path {temp['proxy']};
    fastcgi_temp_path {temp['fastcgi']};
    uwsgi_temp_path {temp['uwsgi']};
    scgi_temp_path {temp['scgi']};
    log_format cdnlab escape=json '{log}';
    access_log {self.access_log} cdnlab;
    map $uri $cdnlab_expires {{ ~\\.mpd$ {MPD_MAX_AGE_S}s; ~\\.m4s$ max; default off; }}
{self.http_extra}
    server {{
        listen {self.listen} reuseport;
        expires $cdnlab_expires;
{add_headers(CORS_HEADERS, "        ")}        location ~ /\\. {{ return 404; }}
{self.server_body}
    }}
}}
"""


def _wait_listening(address: str, port: int, process: subprocess.Popen[bytes],
                    error_log: Path, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise NginxError(f"nginx exited ({process.returncode}): "
                             f"{error_log.read_text(errors='replace').strip()[-400:]}")
        try:
            with socket.create_connection((address, port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise NginxError(f"nginx did not listen on {address}:{port} within {timeout_s:g} s")


class Nginx:
    """One nginx process for a site; a child of the node program that dies with it."""

    def __init__(self, site: NginxSite) -> None:
        self.site = site
        self.process: subprocess.Popen[bytes] | None = None
        self.children: list[int] = []  # a master's workers and cache processes, once serving

    @property
    def conf_path(self) -> Path:
        return self.site.work_dir / "nginx.conf"

    def start(self) -> None:
        work = self.site.work_dir
        for sub in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
            (work / "tmp" / sub).mkdir(parents=True, exist_ok=True)
        self.site.access_log.parent.mkdir(parents=True, exist_ok=True)
        self.conf_path.write_text(self.site.render())
        argv = ["nginx", "-p", str(work), "-e", str(work / "error.log"), "-c",
                str(self.conf_path)]
        check = subprocess.run([*argv, "-t", "-q"], capture_output=True, text=True, check=False)
        if check.returncode:
            raise NginxError(f"nginx rejects its config {self.conf_path}: "
                             f"{check.stderr.strip()[-400:]}")
        self.process = spawn_child(argv, stdin=subprocess.DEVNULL)
        address, _, port = self.site.listen.rpartition(":")
        if address in ("", "0.0.0.0", "*"):
            address = "127.0.0.1"
        _wait_listening(address, int(port), self.process, work / "error.log")
        self.children = self.pids()[1:]

    def pids(self) -> list[int]:
        """The nginx process and, with a master, its children (workers, cache manager)."""
        if self.process is None or self.process.poll() is not None:
            return []
        found = [self.process.pid]
        with contextlib.suppress(OSError):
            children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
            found += [int(pid) for pid in children.read_text().split()]
        return found

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop nginx; a master that died first (killed) leaves its workers serving, so
        they are ended here, each checked to still be an nginx process."""
        if self.process is None:
            return
        if self.process.poll() is not None:
            for pid in self.children:
                with contextlib.suppress(OSError):
                    if Path(f"/proc/{pid}/cmdline").read_bytes().startswith(b"nginx"):
                        os.kill(pid, signal.SIGKILL)
        elif self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
