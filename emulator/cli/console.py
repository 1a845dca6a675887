"""The interactive console: Mininet's CLI on the emulated cluster, with netwall's commands.

`netwall cli --topology ring:4 --link optical-800g` opens it. Mininet's commands work
(`nodes`, `net`, `pingall`, `iperf`, `link gpu0 nvs0 down`, `gpu0 ping -c1 gpu1`, `py
net.hosts`, ...; the user guide says which do not), and netwall adds the ones below, each
with `help`.
When standard input is not a terminal, commands are read from it, one per line, so a lab or
a script can drive the console: `printf 'links\\niperf gpu0 gpu1\\n' | netwall cli ...`.
"""

from __future__ import annotations

import select

from mininet.cli import CLI
from mininet.log import output

from emulator.cli import viewing
from emulator.cli.tables import print_row
from emulator.emulation import Emulation
from emulator.kernel.iperf3 import iperf3_flows
from emulator.models.faults import parse
from foundation.errors import NetwallError
from foundation.text.table import table
from foundation.units import parse_size

USAGE_IPERF = ("usage: iperf [GPU GPU [SECONDS]], SECONDS a whole number 1 to 3600, e.g. "
               "iperf gpu0 gpu1 2")


class NetwallCLI(CLI):
    prompt = "netwall> "

    def __init__(self, emu: Emulation, view=None, rack_size: int | None = None,
                 **kwargs) -> None:
        """`view`: the live view opened by --view, if any (`view` opens one later);
        `rack_size`: GPUs per rack, for its drawing (viewing.rack_size)."""
        self.emu = emu
        self.view = view
        self.rack_size = rack_size
        self.marked = None  # the view's reading before the command running now
        super().__init__(emu.net, **kwargs)

    def waitForNode(self, node) -> None:  # noqa: N802 - Mininet's name
        """Print a node command's output until it ends.

        At a terminal, Mininet's way: what the user types meanwhile goes to the command (an
        interactive program on the node). From a pipe or a file, the lines after a node
        command are the console's next commands, not that command's input: Mininet would
        hand them to the node's shell a character at a time whenever they arrived while the
        command ran, and they vanished there (13 of 19 in one run).
        """
        if self.isatty():
            super().waitForNode(node)
            return
        poller = select.poll()
        poller.register(node.stdout, select.POLLIN)
        while node.waiting:
            try:
                poller.poll()
                output(node.monitor())
            except KeyboardInterrupt:
                node.sendInt()

    def onecmd(self, line: str) -> bool:
        """Run a command; a netwall mistake is one line, and the console goes on."""
        try:
            return super().onecmd(line)
        except NetwallError as e:
            print(f"error: {e}")
            return False

    def precmd(self, line: str) -> str:
        """Before each command the live view, if open, takes a reading (see postcmd)."""
        self.marked = self.view.mark() if self.view is not None else None
        return line

    def postcmd(self, stop: bool, line: str) -> bool:
        """After each command the live view, if open, shows the cables as they are now; a
        command that ran no calls (iperf, ping) shows what it carried, on average."""
        if self.view is not None:
            self.view.refresh(line, self.marked)
        return stop

    # -- what is there ----------------------------------------------------------------------
    def do_links(self, _line: str) -> None:
        """links: every cable: its interfaces, profile, length, reach, rate (real and as
        emulated), state (down after `fail` or Mininet's `link A B down`)."""
        emu = self.emu
        rows = []
        for index, cable in enumerate(emu.topology.links):
            state = emu.link_state(index)
            ends = (emu.plan.interfaces[(index, cable.a)].name,
                    emu.plan.interfaces[(index, cable.b)].name)
            rows.append((f"{cable.a}--{cable.b}", "<->".join(ends), cable.profile,
                         f"{cable.length_m:g}",
                         f"{emu.catalogue[cable.profile].reach_m:g}", f"{state.rate_gbps:g}",
                         f"{state.rate_gbps * 1e3 / emu.dilation:.1f}", state.note))
        print(table(("link", "interfaces", "profile", "length m", "reach m", "Gb/s real",
                     "Mb/s emulated", "state"), rows, align="<<<>>>><"))
        print(f"dilation D = {emu.dilation:.10g}: rates /D, delays xD; link delay "
              f"{emu.delay_mechanism}; GPU endpoint {emu.gpu.name}; not emulated here: "
              f"{', '.join(emu.not_emulated) or 'nothing'}")

    def do_profiles(self, _line: str) -> None:
        """profiles: the link profiles this cluster uses, with every number and its source."""
        for name in sorted({c.profile for c in self.emu.topology.links}):
            profile = self.emu.catalogue[name]
            print(f"{name} ({profile.family}): {profile.description}")
            for key, source in profile.sources.items():
                print(f"  {key} = {getattr(profile, key)}   [{source}]")

    def do_counters(self, _line: str) -> None:
        """counters: bytes, packets and drops each directed link has sent since start."""
        counts = self.emu.network.counters(settle=0)
        rows = [(self.emu.topology.directed(link, sender), c["bytes"], c["packets"], c["drops"])
                for (link, sender), c in sorted(counts.items())]
        print(table(("directed link", "bytes", "packets", "drops"), rows, align="<>>>"))

    # -- measure ----------------------------------------------------------------------------
    def do_collective(self, line: str) -> None:
        """collective [NAME] [ALGORITHM] [SIZE]: run one (default allreduce, its first
        algorithm, 1M) and print an nccl-tests style row; e.g. collective allreduce tree 4M."""
        words = line.split()
        if len(words) > 3:
            raise NetwallError("usage: collective [NAME] [ALGORITHM] [SIZE], e.g. collective "
                               "allreduce tree 4M")
        collective = words[0] if words else "allreduce"
        algorithm = words[1] if len(words) > 1 else None
        size = parse_size(words[2]) if len(words) > 2 else 1 << 20
        result = self.emu.run(collective, algorithm, size, iters=3, warmup=1)
        print(f"# {collective}/{result.algorithm}: size count type proto time(us) algbw busbw "
              "model(us) error retrans(B) J/GB check D host")
        print_row(result)
        viewing.landed(self.view, result)

    def do_view(self, line: str) -> None:
        """view [PORT]: serve the live view of this cluster on 127.0.0.1 (docs/view.md), or
        say where it is served; `collective` runs then show on it, faults at once."""
        words = line.split()
        if self.view is None:
            if len(words) > 1 or (words and not (words[0].isdigit()
                                                 and int(words[0]) <= 65535)):
                raise NetwallError("usage: view [PORT], PORT 0..65535 (0: any free one)")
            self.view = viewing.start("cli", [(self.emu, self.rack_size)],
                                      port=int(words[0]) if words else 0)
        else:
            print(f"the live view is at {self.view.url}")

    def do_iperf(self, line: str) -> None:
        """iperf [A B]: Mininet's iperf (iperf 2, TCP, 5 s) from GPU A to GPU B (default the
        first and the last), with Mininet's output, then the goodput in real units.
        iperf A B SECONDS: netwall's referee, iperf3 TCP for SECONDS, against the configured
        rate."""
        words = line.split()
        gpus = self.emu.topology.gpus
        if len(words) not in (0, 2, 3) or any(w not in gpus for w in words[:2]):
            raise NetwallError(USAGE_IPERF)
        seconds = words[2] if len(words) == 3 else "5"
        if not (seconds.isascii() and seconds.isdigit() and 1 <= int(seconds) <= 3600):
            raise NetwallError(USAGE_IPERF)
        a, b = words[:2] or (gpus[0], gpus[-1])
        hosts = (self.emu.net.get(a), self.emu.net.get(b))
        self.emu.net.check_route(a, b)
        if len(words) == 3:
            bps = iperf3_flows([(*hosts, self.emu.plan.ips[b])], int(seconds))
            self.print_goodput("iperf3 ", a, b, f"{bps / 1e6:.1f}",
                               f"{bps * self.emu.dilation / 1e9:.1f}")
            return
        server, _client = self.emu.net.iperf(hosts, fmt="m")
        if not server.endswith(" Mbits/sec"):
            raise NetwallError(f"iperf {a} -> {b} gave no result")
        # iperf 2 prints three significant digits: the real figure keeps no more.
        mbps = server.removesuffix(" Mbits/sec")
        self.print_goodput("", a, b, mbps, f"{float(mbps) * self.emu.dilation / 1e3:.3g}")

    def print_goodput(self, tool: str, a: str, b: str, emulated: str, real: str) -> None:
        """A goodput from GPU a to GPU b in Mb/s emulated and Gb/s real (x D), beside the
        rate of the route's first link."""
        route = next(r for r in self.emu.plan.routes[a] if r.dst == self.emu.topology.rank(b))
        link = next(i.link for i in self.emu.plan.interfaces.values() if i.name == route.iface)
        print(f"{tool}{a} -> {b}: {emulated} Mb/s emulated = {real} Gb/s real "
              f"(x D={self.emu.dilation:.10g}); first link configured at "
              f"{self.emu.link_state(link).rate_gbps:g} Gb/s real")

    # -- break and repair -------------------------------------------------------------------
    def do_fail(self, line: str) -> None:
        """fail LINK [channels=N]: take a link down, or fail N lanes/channels on it
        (one lane downs copper or optical; wide-and-slow spares absorb channel losses)."""
        words = line.split()
        if not words:
            raise NetwallError("usage: fail LINK [channels=N], e.g. fail gpu0--nvs0 channels=40")
        kind = words[1] if len(words) > 1 else "down"
        self.strike(words[0], f"{kind}:{words[0]}@0")

    def do_ber(self, line: str) -> None:
        """ber LINK RATE: set a link's post-FEC bit-error rate, e.g. ber gpu0--nvs0 1e-7."""
        words = line.split()
        if len(words) != 2:
            raise NetwallError("usage: ber LINK RATE, e.g. ber gpu0--nvs0 1e-7")
        self.strike(words[0], f"ber={words[1]}:{words[0]}@0")

    def do_restore(self, line: str) -> None:
        """restore LINK: undo every fault on a link (and Mininet's link down)."""
        print(self.emu.set_faults(self.emu.link_index(line.strip()), []).note)

    def strike(self, name: str, spec: str) -> None:
        link = self.emu.link_index(name)
        print(self.emu.set_faults(link, [*self.emu.faults.get(link, []), parse(spec)]).note)


def console(emu: Emulation, view=None, rack_size: int | None = None) -> None:
    """Open the console on a running emulation until the user types exit (or stdin ends);
    `view`: the live view --view opened. The view the console ends with is closed."""
    print("netwall console: Mininet's CLI plus netwall commands (links, profiles, counters, "
          "collective, iperf, fail, ber, restore, view); type help or exit")
    cli = None
    try:
        cli = NetwallCLI(emu, view, rack_size)
    finally:
        shown = cli.view if cli is not None else view
        if shown is not None:
            shown.close()
