"""An emulated router's routing daemons: Debian's FRR (`zebra` and `bgpd`) run per router
namespace by `python -m nodes.router`, with a config rendered by `config.py`."""
