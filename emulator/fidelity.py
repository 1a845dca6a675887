"""Was the run faithful? The checks that tell an emulated result from an artefact of the host.

An emulator is only right while its host keeps up: links must carry no more than their
configured rate (else shaping failed), the host's CPUs must not be saturated (else software,
not the emulated links, set the pace), and frames must not be lost beyond what the profiles
and faults ask for. Each run is judged on all three and flagged with the reasons.
"""

from __future__ import annotations

from dataclasses import dataclass, field

CPU_SATURATED = 0.90  # busy share of all CPUs above which the host may set the pace
OVER_RATE = 1.02  # a link carrying more than this share of its rate was not shaped


def cpu_times() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs since boot, from /proc/stat."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    total = sum(fields[:8])  # guest time is already counted in user
    return total - idle, total


@dataclass
class Verdict:
    cpu_busy: float
    max_link_utilization: float
    unexpected_drops: int
    unexpected_retransmits: int
    flags: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"cpu_busy": self.cpu_busy, "max_link_utilization": self.max_link_utilization,
                "unexpected_drops": self.unexpected_drops,
                "unexpected_retransmits": self.unexpected_retransmits,
                "faithful": not self.flags, "flags": self.flags}


def judge(cpu_before: tuple[int, int], cpu_after: tuple[int, int], links: list[dict],
          rates_bps: dict[str, float], wall_s: float, retransmitted_frames: int,
          loss_expected: bool) -> Verdict:
    """Judge one timed program. `links` are the per-link reports (bytes, drops), `rates_bps`
    each link's configured (emulated) rate, `wall_s` the program's wall-clock time."""
    busy = (cpu_after[0] - cpu_before[0]) / max(1, cpu_after[1] - cpu_before[1])
    utilization = {link["link"]: link["bytes"] * 8 / (rates_bps[link["link"]] * wall_s)
                   for link in links} if wall_s > 0 else {}
    top = max(utilization.values(), default=0.0)
    drops = sum(link["drops"] for link in links)
    retransmits = 0 if loss_expected else retransmitted_frames
    verdict = Verdict(busy, top, drops, retransmits)
    if busy > CPU_SATURATED:
        verdict.flags.append(f"host CPUs {busy:.0%} busy: software may have set the pace "
                             "(raise --dilation)")
    if top > OVER_RATE:
        worst = max(utilization, key=utilization.get)
        verdict.flags.append(f"link {worst} carried {top:.0%} of its rate: shaping failed")
    if drops:
        verdict.flags.append(f"{drops} frames dropped by full queues")
    if retransmits:
        verdict.flags.append(f"{retransmits} frames resent on links that should not lose any")
    return verdict
