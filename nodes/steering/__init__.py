"""DASH content steering: a steering server that ranks a session's pathways (the clusters)
from the redirector's own RTT and load picture, with the redirector's policies
(`manifest.py` the manifest and ranking, `server.py` the HTTP front end the redirector's
program runs)."""
