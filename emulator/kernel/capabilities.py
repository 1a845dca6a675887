"""Probe what this kernel can emulate, by trying it in a throw-away namespace.

Module lists and config files lie (a qdisc can be built in, a module, or missing), so netwall
asks the kernel itself: it makes a veth pair inside a fresh network namespace and tries each
qdisc and link kind there. Nothing touches the host's own interfaces, and everything vanishes
with the namespace.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from dataclasses import asdict, dataclass

from emulator.kernel import loss
from emulator.kernel.netns import iproute

#: What each capability means for a netwall user, in plain words.
CONSEQUENCES = {
    "veth": "virtual links between GPU hosts",
    "bridge": "scale-up and spine switches (Linux bridge)",
    "htb": "link rate shaping at any rate",
    "tbf": "token-bucket shaping (alternative to htb)",
    "netem": "propagation/FEC delay on links in the kernel (and loss, where present); "
             "without it the receiving agents hold each frame for its link delay",
    "bpf_loss": "bit-error frame loss by an eBPF classifier (used where netem is missing)",
    "ovs": "Open vSwitch switches (netwall uses Linux bridges; OVS is optional)",
}


@dataclass(frozen=True)
class Capabilities:
    veth: bool
    bridge: bool
    htb: bool
    tbf: bool
    netem: bool
    bpf_loss: bool
    ovs: bool

    def missing(self) -> list[str]:
        return [name for name, ok in asdict(self).items() if not ok]

    def report(self) -> str:
        """The plain-words report `netwall check` prints."""
        lines = []
        for name, ok in asdict(self).items():
            mark = "yes" if ok else "NO "
            lines.append(f"  {name:<9}{mark}  {CONSEQUENCES[name]}")
        lines.append("")
        if not (self.veth and self.htb):
            lines.append("netwall cannot run here: it needs veth and htb.")
        elif self.netem:
            lines.append("Everything netwall emulates works on this kernel. Link delay: netem "
                         "delays each frame in the kernel.")
        else:
            lost = ("" if self.bpf_loss else
                    " Bit-error loss is NOT emulated (no netem, no eBPF loss classifier).")
            lines.append(
                "Link delay: held by the receiving agents (no netem here): each frame waits "
                "for its route's dilated propagation and FEC delay before its step may end, "
                "so the latency term is emulated; a kernel with sch_netem (e.g. the Vagrant "
                f"VM) delays frames in the kernel instead.{lost}"
            )
        return "\n".join(lines)


def probe() -> Capabilities:
    """Try each feature in a temporary network namespace (needs root)."""
    holder = subprocess.Popen(["unshare", "--net", "sleep", "60"])
    try:
        _wait_for_namespace(holder.pid)
        ipr = iproute(holder.pid)
        try:
            veth = _try(lambda: ipr.link("add", ifname="p0", kind="veth", peer="p1"))
            bridge = _try(lambda: ipr.link("add", ifname="b0", kind="bridge"))
            found = {}
            if veth:
                index = ipr.link_lookup(ifname="p0")[0]
                found["htb"] = _try(lambda: ipr.tc("add", "htb", index, 0x10000, default=1))
                _try(lambda: ipr.tc("del", index=index, handle=0x10000, root=True))
                found["tbf"] = _try(lambda: ipr.tc("add", "tbf", index, 0x10000, rate="1mbit",
                                                   burst=16384, latency=50000))
                _try(lambda: ipr.tc("del", index=index, handle=0x10000, root=True))
                found["netem"] = _try(lambda: ipr.tc("add", "netem", index, 0x10000, delay=100))
                found["bpf_loss"] = _try(lambda: loss.attach(ipr, index, 0.5))
        finally:
            ipr.close()
    finally:
        holder.kill()
        holder.wait()
    return Capabilities(
        veth=veth,
        bridge=bridge,
        htb=found.get("htb", False),
        tbf=found.get("tbf", False),
        netem=found.get("netem", False),
        bpf_loss=found.get("bpf_loss", False),
        ovs=_ovs_available(),
    )


def _try(action) -> bool:
    try:
        action()
    except Exception:  # noqa: BLE001 - any failure means "not available here"
        return False
    return True


def _wait_for_namespace(pid: int) -> None:
    """`unshare` execs sleep once the namespace exists; wait until /proc shows a new one."""
    home = os.stat("/proc/self/ns/net").st_ino
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            if os.stat(f"/proc/{pid}/ns/net").st_ino != home:
                return
        except FileNotFoundError:
            pass
        time.sleep(0.005)
    raise RuntimeError("could not create a network namespace (are you root?)")


def _ovs_available() -> bool:
    """Open vSwitch needs its kernel datapath and its tools."""
    return os.path.isdir("/sys/module/openvswitch") and shutil.which("ovs-vsctl") is not None
