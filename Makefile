# cdnlab: the two commands users need are `sudo make demo` and `sudo make test`.
# Everything they need is installed from this file and pyproject.toml.

SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
CDNLAB := $(VENV)/bin/cdnlab
STAMPS := .setup

# Debian/Ubuntu packages: the emulator (Mininet, Open vSwitch, iproute2, iptables),
# measurement tools, and what the node programs run (ffmpeg, nginx and its JavaScript module,
# with which an edge's CMSD reads its monitor's shares; BIND's dig/nsupdate, dnsperf;
# Knot's kdig, and Knot itself as the DNS benchmark's peer in the same run; wrk, the load of
# bench edge; ssh, with which a split run's head reaches its other machines; gcc and libc6-dev,
# which compile the nfqueue backend's delay server, cdnlab/net/shaping/delayd.c; FRR's zebra
# and bgpd, the routing daemons of emulated routers, nodes/router).
APT_PACKAGES := mininet openvswitch-switch iproute2 iptables ethtool bridge-utils \
	iputils-ping iperf3 tcpdump kmod procps ffmpeg nginx libnginx-mod-http-js bind9-dnsutils dnsperf knot-dnsutils knot unbound wrk \
	openssh-client python3 python3-venv python3-dev gcc libc6-dev frr
# Browser viewers (nodes/browser): Debian's Chromium, and Node with npm (Debian's, unless a
# node and npm are already installed); dash.js and puppeteer-core come from npm at the
# versions nodes/browser/package-lock.json pins (npm ci), and work offline after.
BROWSER_APT_PACKAGES := chromium $(if $(and $(shell command -v node),$(shell command -v npm)),,nodejs npm)
# The real-kernel tier (make vmtest) adds QEMU, debootstrap and mkfs.ext4 (e2fsprogs), on a
# machine whose kernel lacks sch_netem or the openvswitch module (elsewhere it boots nothing).
VM_APT_PACKAGES := qemu-system-x86 debootstrap e2fsprogs
# The other machines of a split run (Mininet Cluster Edition, `--cluster`) answer the head's
# ssh (sshd, started by its package) and run its commands as root (sudo, for a login other
# than root).
CLUSTER_APT_PACKAGES := openssh-server sudo

# Install the Debian packages of $(1) that are missing (root only).
define apt_install
	@if [ "$$(id -u)" != 0 ]; then echo "make: installing Debian packages needs root; run it with sudo" >&2; exit 1; fi
	@missing=$$(for p in $(1); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing: $$missing"; \
		DEBIAN_FRONTEND=noninteractive apt-get update -q && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing; \
	fi
endef

DEMO_SCENARIO ?= youtube_pull

.PHONY: setup browser cluster-packages demo test check vmtest clustertest vm-packages unit lint \
	services clean-run help
help:
	@echo "sudo make demo    set up if needed, then run the default scenario"
	@echo "sudo make test    set up if needed, then run the whole test suite (check, vmtest, clustertest)"
	@echo "sudo make check   lint and pytest on this machine's kernel"
	@echo "sudo make vmtest  the real-kernel tier: root tests in a QEMU guest with netem and OVS"
	@echo "sudo make clustertest  a run split across two QEMU guests with Mininet Cluster Edition"
	@echo "sudo make vm-packages  QEMU and the image tools alone (vmtest installs them where it boots)"
	@echo "sudo make browser  Chromium, Node and the pinned dash.js for browser viewers (setup runs it)"

# SETUP_BROWSER=no leaves the browser viewers out (the real-kernel tier's image does: no
# browser test runs in its guest)
SETUP_BROWSER ?= yes
# SETUP_CLUSTER=yes adds sshd and sudo: a machine a split run's head can use (the
# Vagrantfile's machines and the cluster tier's guest image ask for it)
SETUP_CLUSTER ?= no
setup: $(STAMPS)/apt $(STAMPS)/venv $(if $(filter yes,$(SETUP_BROWSER)),$(STAMPS)/browser) \
	$(if $(filter yes,$(SETUP_CLUSTER)),cluster-packages)

cluster-packages:
	$(call apt_install,$(CLUSTER_APT_PACKAGES))

browser: $(STAMPS)/browser

$(STAMPS)/browser: nodes/browser/package.json nodes/browser/package-lock.json
	@mkdir -p $(STAMPS)
	$(call apt_install,$(BROWSER_APT_PACKAGES))
	cd nodes/browser && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

$(STAMPS)/apt: Makefile
	@mkdir -p $(STAMPS)
	$(call apt_install,$(APT_PACKAGES))
	@touch $@

$(STAMPS)/vm-apt: Makefile $(STAMPS)/venv
	@if $(PY) -c 'from cdnlab.vm.tier import host_has_the_kernel_paths as h; raise SystemExit(0 if h() else 1)'; then \
		echo "vmtest: this kernel has sch_netem and the openvswitch module; no QEMU needed"; \
	else $(MAKE) --no-print-directory vm-packages; fi
	@touch $@

vm-packages:
	$(call apt_install,$(VM_APT_PACKAGES))

# A venv from the distribution's Python, seeing Debian's mininet through --system-site-packages.
$(STAMPS)/venv: pyproject.toml cdnlab/net/shaping/delayd.c $(STAMPS)/apt
	@test -x $(PY) || /usr/bin/python3 -m venv --system-site-packages $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	$(PY) -m cdnlab.net.shaping.helper build
	@touch $@

# Services the emulator needs that a fresh machine (or CI) has not started.
services: setup
	$(CDNLAB) doctor --fix

demo: services
	$(CDNLAB) run $(DEMO_SCENARIO)

# The whole suite: this machine's kernel first, then the guest's, then two guests as one
# split run.
test: check vmtest clustertest

check: services
	$(VENV)/bin/ruff check cdnlab nodes topologies tests
	$(VENV)/bin/pytest

# The root tests marked `vm`, and `bench fidelity`, inside a Debian guest under QEMU (its
# image is cached in /var/cache/cdnlab/vm, keyed on its packages and our dependencies).
vmtest: setup $(STAMPS)/vm-apt
	$(CDNLAB) vm test

# quick_pull split across two QEMU guests joined by a virtual network (Mininet Cluster
# Edition over ssh and GRE tunnels); the same cached image as vmtest, and QEMU on any kernel
# (two machines are the point here, not the kernel's features).
clustertest: setup vm-packages
	$(CDNLAB) vm cluster

unit: $(STAMPS)/venv
	$(VENV)/bin/pytest tests/unit

lint: $(STAMPS)/venv
	$(VENV)/bin/ruff check cdnlab nodes topologies tests

# Remove what an interrupted run recorded and left behind (never by name pattern).
clean-run: setup
	$(CDNLAB) clean
