"""nginx server blocks for an edge, in pull or push mode.

Both add `X-Cache-Status` (HIT, MISS, EXPIRED… from nginx's cache; HIT for a filled file
in push mode) and `X-Cluster` to every response, with exactly one set of CORS headers (the
parent's are hidden, so a proxied response never says `*, *`) and a 204 to a CORS
preflight; a pull edge revalidates an expired entry with a conditional request (the MPD
lives 2 s, see `nodes/common/nginx.py`). They serve the monitor's `load.json` at
`/load`, expose `stub_status` to the host itself, and answer 302 to `redirect_to` while the
monitor's overload flag exists (once: a redirected request is never redirected again).
With `cmsd` every response carries CTA-5006 server data (`nodes/common/cmsd.py`):
`CMSD-Static: ot=<type>,sf=d,st=v` (the type from the request's CMCD `ot`, else from the
name: an MPD `m`, an init segment `i`, else `o`) and `CMSD-Dynamic: "<cluster>";etp=…;mb=…`
with `;du` while the monitor's duress flag exists (the cluster's utilisation over a
segment's time above `threshold`). etp and mb are the shares of the cluster's capacity in
force per video stream it carries (a session asking one of its servers for video), which
the load monitor writes each sample (`nodes/edge/shares.py`);
nginx's JavaScript module (njs, NJS_MODULE) reads that file into each response's header.
The request log adds: cache status, upstream time, and the
reason of any redirect (`overload`, `not_filled`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from nodes.common import cmsd
from nodes.common.conventions import SHED_ABOVE
from nodes.common.nginx import CORS_HEADERS, add_headers, hide_upstream_cors, preflight

REDIRECTED = "cdnlab_redirected"  # query argument an overload redirect adds
LOG_FIELDS = {
    "cache": "\"$upstream_cache_status$edge_cache\"",
    "upstream_s": "\"$upstream_response_time\"",
    "redirect": "\"$edge_redirect\"",
    "cluster": "\"$edge_cluster\"",
}
NJS_MODULE = Path("/usr/lib/nginx/modules/ngx_http_js_module.so")  # libnginx-mod-http-js
# njs reads the monitor's shares per response; before the first is written, the whole
# capacity's (one stream)
SHARES_SCRIPT = """// rendered by cdnlab: the CMSD shares the edge's load monitor last wrote
var fs = require('fs');
function shares(r) {
    try { return fs.readFileSync(%s, 'utf8').trim(); } catch (e) { return %s; }
}
export default { shares };
"""


@dataclass(frozen=True)
class EdgeSite:
    cluster: str
    mode: str  # pull | push
    work: Path
    parent: str | None = None  # host:port of the parent (pull, and push with miss=proxy)
    cache_size_mb: int = 1024
    store: Path | None = None  # push: the filled content
    miss: str = "redirect"  # push: redirect | proxy
    redirect_to: str | None = None  # base URL answered with 302 (overload, push misses)
    cmsd: bool = False  # CMSD-Static and CMSD-Dynamic on every response
    capacity_mbps: float = 1000.0
    threshold: float = SHED_ABOVE

    @property
    def overload_flag(self) -> Path:
        return self.work / "overloaded"

    @property
    def duress_flag(self) -> Path:
        """Exists while the cluster is over its threshold (CMSD `du`)."""
        return self.work / "duress"

    @property
    def load_file(self) -> Path:
        return self.work / "load.json"

    @property
    def cache_dir(self) -> Path:
        return self.work / "cache"

    def http_extra(self) -> str:
        lines = [f'    map $host $edge_cluster {{ default "{self.cluster}"; }}']
        if self.parent:
            lines.append(f"    upstream parent {{ server {self.parent}; keepalive 32; }}")
        if self.cmsd:
            lines.append(self._cmsd_maps())
        if self.mode == "pull":
            lines.append(f"    proxy_cache_path {self.cache_dir} levels=1:2 keys_zone=edge:16m "
                         f"max_size={self.cache_size_mb}m inactive=7d use_temp_path=off;")
        return "\n".join(lines)

    @property
    def shares_file(self) -> Path:
        """`etp=…;mb=…`, written by the load monitor (nodes/edge/shares.py)."""
        return self.work / "cmsd_shares"

    @property
    def modules(self) -> tuple[Path, ...]:
        return (NJS_MODULE,) if self.cmsd else ()

    def write_script(self) -> None:
        """The njs script nginx reads the shares with (CMSD only); before nginx starts."""
        if not self.cmsd:
            return
        kbps = self.capacity_mbps * 1000
        fallback = f"etp={round(kbps)};mb={round(kbps * self.threshold)}"
        (self.work / "cmsd.js").write_text(
            SHARES_SCRIPT % (json.dumps(str(self.shares_file)), json.dumps(fallback)))

    def _cmsd_maps(self) -> str:
        """The object type, and the shares from the script, as nginx variables."""
        return "\n".join([
            '    map $arg_CMCD $cmsd_cmcd_ot { "~*(?:^|%2C)ot%3D(?<cmcd_ot>[a-z]+)" '
            '$cmcd_ot; default ""; }',
            '    map "$cmsd_cmcd_ot:$uri" $cmsd_ot { "~^(?<sent_ot>[a-z]+):" $sent_ot; '
            '"~\\.mpd$" m; "~/init-[^/]*$" i; default o; }',
            f"    js_import cmsd from {self.work / 'cmsd.js'};",
            "    js_set $cmsd_shares cmsd.shares;"])

    def _overload(self) -> str:
        """302 to `redirect_to` while the flag exists, marked so the next edge serves the
        request whatever its own load: a viewer is redirected once, never bounced on."""
        if not self.redirect_to:
            return ""
        return ('            set $edge_shed "";\n'
                f'            if (-f {self.overload_flag}) {{ set $edge_shed "1"; }}\n'
                f'            if ($arg_{REDIRECTED}) {{ set $edge_shed ""; }}\n'
                '            if ($edge_shed) { set $edge_redirect overload; '
                f"return 302 {self.redirect_to}$uri?{REDIRECTED}=1&$args; }}\n")

    def _proxy(self) -> str:
        return ("            proxy_pass http://parent;\n"
                "            proxy_http_version 1.1;\n"
                '            proxy_set_header Connection "";\n'
                "            proxy_set_header Host $host;\n" + hide_upstream_cors())

    def _headers(self, cache_status: str) -> str:
        """add_header in a location replaces the server's: all of them, every time."""
        server_data = {cmsd.STATIC: "ot=$cmsd_ot,sf=d,st=v",
                       cmsd.DYNAMIC: f'\\"{self.cluster}\\";$cmsd_shares$cmsd_du'}
        return add_headers({"X-Cache-Status": cache_status, "X-Cluster": self.cluster}
                           | CORS_HEADERS | (server_data if self.cmsd else {}))

    def _preflight(self) -> str:
        return preflight({"X-Cluster": self.cluster})

    def _duress(self) -> str:
        """`;du` while the flag exists; tested at server level, before any location."""
        if not self.cmsd:
            return ""
        return ('        set $cmsd_du "";\n'
                f'        if (-f {self.duress_flag}) {{ set $cmsd_du ";du"; }}\n')

    def server_body(self) -> str:
        common = ('        set $edge_redirect "";\n'
                  '        set $edge_cache "";\n' + self._duress() +
                  f"        location = /load {{ default_type application/json; "
                  f"alias {self.load_file}; }}\n"
                  "        location = /nginx_status { stub_status; allow 127.0.0.1; "
                  "deny all; }\n")
        if self.mode == "pull":
            return common + (
                "        location / {\n" + self._preflight() + self._overload() +
                self._proxy() +
                "            proxy_cache edge;\n"
                "            proxy_cache_revalidate on;\n"
                "            proxy_cache_key $uri;\n"
                "            proxy_cache_valid 200 7d;\n"
                "            proxy_cache_lock on;\n"
                "            proxy_cache_lock_timeout 60s;\n"
                "            proxy_cache_lock_age 60s;\n"
                + self._headers("$upstream_cache_status") + "        }\n")
        assert self.store is not None
        miss = "            set $edge_cache MISS;\n" + self._headers("MISS")
        if self.miss == "proxy":
            miss += self._proxy()
        else:
            miss += ("            set $edge_redirect not_filled;\n"
                     f"            return 302 {self.redirect_to}$request_uri;\n")
        return common + (
            f"        root {self.store};\n"
            "        location / {\n" + self._preflight() + self._overload() +
            "            set $edge_cache HIT;\n" + self._headers("HIT") +
            "            try_files $uri @miss;\n"
            "        }\n"
            "        location @miss {\n" + miss + "        }\n")
