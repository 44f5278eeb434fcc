"""A recursive resolver on an emulated host: Debian's unbound, configured to reach the
redirector for the CDN zone, with EDNS Client Subnet on or off."""
