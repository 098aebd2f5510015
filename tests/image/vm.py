"""The built SD-card image booted in qemu-system-aarch64 (``-M virt``, software emulation).

The kernel, the initramfs and the kernel command line are read from the image's own boot
partition (only the console is changed, to the virt machine's serial port); the root file
system, its fstab and every unit are the image's own. The disk is a copy of the image made
larger than the image, as an owner's card is, so first boot grows it. qemu's user-mode network
forwards ports on 127.0.0.1 to the guest's :53 (UDP and TCP), :80, :443 (HTTPS) and :853 (DNS
over TLS); the guest reaches the test's servers on the host's loopback through the gateway
10.0.2.2. The guest agent (qemu-ga, on
the image but started only when qemu offers its port) runs the in-guest checks.
"""

from __future__ import annotations

import json
import lzma
import os
import re
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from .qga import GuestAgent

SECTOR = 512
GATEWAY = "10.0.2.2"  # qemu user networking: the host, as the guest sees it


@dataclass
class Partition:
    start: int  # bytes
    size: int  # bytes


def partitions(image: Path) -> list[Partition]:
    table = json.loads(subprocess.run(["sfdisk", "--json", str(image)], capture_output=True, text=True,
                                      check=True).stdout)["partitiontable"]
    return [Partition(p["start"] * SECTOR, p["size"] * SECTOR) for p in table["partitions"]]


def disk_id(image: Path) -> str:
    table = json.loads(subprocess.run(["sfdisk", "--json", str(image)], capture_output=True, text=True,
                                      check=True).stdout)["partitiontable"]
    return table["id"].lower().removeprefix("0x")


def fat(image: Path) -> str:
    """mtools' name for the boot partition inside the image file."""
    return f"{image}@@{partitions(image)[0].start}"


def fat_read(image: Path, name: str) -> bytes:
    return subprocess.run(["mtype", "-i", fat(image), f"::{name}"], capture_output=True, check=True).stdout


def fat_list(image: Path) -> list[str]:
    out = subprocess.run(["mdir", "-b", "-i", fat(image), "::/"], capture_output=True, text=True,
                         check=True).stdout
    return [line.strip().removeprefix("::/") for line in out.splitlines() if line.strip()]


def fat_write(image: Path, name: str, data: bytes, tmp: Path) -> None:
    src = tmp / ("fat-" + name)
    src.write_bytes(data)
    subprocess.run(["mcopy", "-o", "-i", fat(image), str(src), f"::{name}"], check=True)
    src.unlink()


def decompress(xz: Path, dest: Path) -> Path:
    """The raw image, sparse where it is zero."""
    raw = dest / xz.name.removesuffix(".xz")
    with lzma.open(xz) as src, open(raw, "wb") as out:
        while block := src.read(1 << 20):
            if block.count(0) == len(block):
                out.seek(len(block), os.SEEK_CUR)
            else:
                out.write(block)
        out.truncate()
    return raw


def free_port() -> int:
    """A port free on 127.0.0.1 for both UDP and TCP."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
            t.bind(("127.0.0.1", 0))
            port = t.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
                try:
                    u.bind(("127.0.0.1", port))
                except OSError:
                    continue
            return port
    raise RuntimeError("no port free for both UDP and TCP")


class Machine:
    """One copy of the image (``disk``) and the qemu that boots it."""

    def __init__(self, raw: Path, workdir: Path, name: str, extra_bytes: int = 1 << 30) -> None:
        self.dir = workdir / name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.disk = self.dir / "disk.img"
        subprocess.run(["cp", "--sparse=always", str(raw), str(self.disk)], check=True)
        with open(self.disk, "r+b") as f:  # the card is larger than the image
            f.truncate(os.path.getsize(raw) + extra_bytes)
        self.proc: subprocess.Popen | None = None
        self.console = self.dir / "console.log"
        self.agent = GuestAgent(str(self.dir / "qga.sock"))
        self.dns_port = 0
        self.web_port = 0
        self.https_port = 0
        self.dot_port = 0
        self.started = 0.0

    # -- the boot partition, before or between boots ---------------------------------------------
    def boot_files(self) -> list[str]:
        return fat_list(self.disk)

    def put_boot_file(self, name: str, data: bytes) -> None:
        fat_write(self.disk, name, data, self.dir)

    def kernel_args(self) -> str:
        """The image's cmdline.txt with the console moved to the virt machine's PL011."""
        words = fat_read(self.disk, "cmdline.txt").decode().split()
        return " ".join([w for w in words if not w.startswith("console=")] + ["console=ttyAMA0,115200"])

    def kernel_and_initrd(self) -> tuple[Path, Path]:
        config = fat_read(self.disk, "config.txt").decode()
        kernel = re.search(r"^kernel=(\S+)", config, re.M)
        initrd = re.search(r"^initramfs (\S+)", config, re.M)
        assert kernel and initrd, config
        out = []
        for name in (kernel.group(1), initrd.group(1)):
            path = self.dir / name
            path.write_bytes(fat_read(self.disk, name))
            out.append(path)
        return out[0], out[1]

    # -- running ---------------------------------------------------------------------------------------
    def start(self) -> None:
        kernel, initrd = self.kernel_and_initrd()
        ports: list[int] = []
        while len(ports) < 4:  # each free_port() releases its socket: the same one may come twice
            port = free_port()
            if port not in ports:
                ports.append(port)
        self.dns_port, self.web_port, self.https_port, self.dot_port = ports
        sock = self.dir / "qga.sock"
        sock.unlink(missing_ok=True)
        net = (f"user,id=n0,hostfwd=udp:127.0.0.1:{self.dns_port}-:53,"
               f"hostfwd=tcp:127.0.0.1:{self.dns_port}-:53,hostfwd=tcp:127.0.0.1:{self.web_port}-:80,"
               f"hostfwd=tcp:127.0.0.1:{self.https_port}-:443,hostfwd=tcp:127.0.0.1:{self.dot_port}-:853")
        argv = ["qemu-system-aarch64", "-M", "virt", "-cpu", "cortex-a72", "-smp", "2", "-m", "1024",
                "-display", "none", "-no-reboot", "-serial", f"file:{self.console}",
                "-kernel", str(kernel), "-initrd", str(initrd), "-append", self.kernel_args(),
                "-drive", f"file={self.disk},format=raw,if=none,id=d0,cache=unsafe",
                "-device", "virtio-blk-pci,drive=d0",
                # romfile= (none): the kernel is booted directly, so the NIC's PXE option ROM is
                # not needed, and Debian ships it apart (ipxe-qemu, only a recommendation of
                # qemu-system-arm, which scripts/test-image installs without recommendations).
                "-netdev", net, "-device", "virtio-net-pci,netdev=n0,romfile=",
                "-device", "virtio-rng-pci",
                "-chardev", f"socket,id=qga0,path={sock},server=on,wait=off",
                "-device", "virtio-serial-pci",
                "-device", "virtserialport,chardev=qga0,name=org.qemu.guest_agent.0"]
        self.started = time.monotonic()
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=open(self.dir / "qemu.err", "wb"))

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def console_text(self) -> str:
        try:
            return self.console.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def tail(self, lines: int = 60) -> str:
        err = (self.dir / "qemu.err").read_text(errors="replace") if (self.dir / "qemu.err").exists() else ""
        return "\n".join(self.console_text().splitlines()[-lines:]) + ("\nqemu: " + err if err else "")

    def wait_exit(self, timeout: float) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout=timeout)

    def kill(self) -> None:
        self.agent.close()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)


def tools_missing() -> list[str]:
    return [t for t in ("qemu-system-aarch64", "sfdisk", "mtype", "mcopy", "mdir") if shutil.which(t) is None]
