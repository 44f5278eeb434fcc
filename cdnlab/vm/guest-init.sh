#!/bin/sh
# Inside the test guest, run by the image's PID 1 (/sbin/cdnlab-init) once the host's share is
# at /mnt/host: make the mounts Mininet and Open vSwitch expect, load the kernel modules this
# tier exists for, and hand over to `python -m cdnlab.vm.guest`, which writes out/status.
export PATH=/opt/cdnlab/src/.venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root LANG=C.UTF-8
# Mininet imports distutils; setuptools' stand-in for it pulls in pkg_resources: importing
# mininet.net took 0.23 s on the host against 0.05 s with the standard library's (0.7 s in
# the guest), in every process that imports Mininet
export SETUPTOOLS_USE_DISTUTILS=stdlib
mount -t tmpfs -o mode=755 tmpfs /run
mount -t tmpfs tmpfs /tmp
mkdir -p /dev/pts /dev/shm /run/lock
mount -t devpts -o gid=5,mode=620,ptmxmode=666 devpts /dev/pts   # Mininet's shells use ptys
mount -t tmpfs tmpfs /dev/shm
mount -t cgroup2 cgroup2 /sys/fs/cgroup 2>/dev/null
hostname cdnlab-guest
ip link set lo up
ulimit -n 65536
for module in sch_netem sch_htb openvswitch br_netfilter nfnetlink_queue; do
    modprobe "$module" || echo "guest-init: modprobe $module failed"
done
echo "guest-init: kernel $(uname -r), $(nproc) CPUs; modules: $(lsmod | awk 'NR>1 {print $1}' | grep -E '^(sch_netem|openvswitch)$' | tr '\n' ' ')"
# The cluster tier (make clustertest): this guest is one of two machines on a virtual network.
# cluster.env names its address, host name and role; both guests mount the same second share
# at /srv/cdnlab (the run directory every machine must share), trust the run's one ssh key,
# and answer ssh.
if [ -f /mnt/host/cluster.env ]; then
    . /mnt/host/cluster.env
    hostname "$CLUSTER_NAME"
    echo "127.0.0.1 localhost $CLUSTER_NAME" > /etc/hosts
    modprobe virtio_net; modprobe ip_gre
    ip link set eth0 up && ip addr add "$CLUSTER_ADDRESS" dev eth0
    mkdir -p /srv/cdnlab /root/.ssh /run/sshd
    mount -t 9p -o trans=virtio,version=9p2000.L,msize=524288 shared /srv/cdnlab ||
        echo "guest-init: the shared run directory did not mount"
    install -m 600 /mnt/host/ssh/id_ed25519 /root/.ssh/id_ed25519
    install -m 644 /mnt/host/ssh/id_ed25519.pub /root/.ssh/authorized_keys
    /usr/sbin/sshd || echo "guest-init: sshd did not start"
    echo "guest-init: cluster machine $CLUSTER_NAME at $CLUSTER_ADDRESS ($CLUSTER_ROLE)"
fi
# The tree runs from the guest's own memory, with the bytecode the host compiled (times kept
# by tar, so it stays valid): every node program of a run is a new Python process, and on
# an emulated CPU reading over 9p and compiling each time is slow. One archive, because
# copying its ~400 files one by one over 9p took 7-12 s.
tar -xf /mnt/host/project.tar -C /tmp && cd /tmp/project &&
    python -m cdnlab.vm.guest --out /mnt/host/out
echo "guest-init: done (status $(cat /mnt/host/out/status 2>/dev/null || echo none))"
