"""Edge servers (`python -m nodes.edge serve`): where viewers are served, inside ISPs and at
IXPs. Each is nginx in one of two modes, with a load monitor beside it.

    sites     the nginx configuration: pull (proxy_cache in front of a parent, collapsed
              misses, bounded size) or push (serve only what was filled; a miss is
              redirected or proxied), and the 302 an overloaded edge answers
    receiver  the fill endpoint push mode is filled through: resumable PUTs, verified
              by SHA-256, renamed into place only when complete
    monitor   live load: egress Mbit/s, connections, requests/s, hit ratios, storage; a
              JSON endpoint, periodic events, and the overload flag nginx redirects on
"""
