"""The real-kernel test tier: the project's root tests inside a Debian guest under QEMU.

This development machine's kernel has neither sch_netem nor the openvswitch module, which the
users' VMs have; this tier runs those code paths on the distribution's own kernel.

    mirror.py           the Debian mirror and suite, read from the host's apt sources
    image.py            the guest image: debootstrap, then `make setup` inside, cached by
                        content
    guest-packages.txt  what debootstrap adds before make setup (the kernel, make)
    boot.py             QEMU (TCG, no network device), the project tree over 9p, the console
    guest-init.sh       in the guest: mounts, kernel modules, then guest.py
    guest.py            in the guest: kernel checks, `pytest -m vm`, `bench fidelity`
    tier.py             `cdnlab vm test` / `make vmtest`: build or reuse, boot, report
"""
