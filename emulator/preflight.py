"""What every command does between checking its input and building its first network: say
what this kernel cannot emulate, give the emulations this host's calibration (measuring it
once per machine), and refuse work past the time limit. `netwall run`, `replay`, `compare`
and campaigns share it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from emulator.emulation import Emulation
from emulator.kernel.capabilities import Capabilities
from emulator.models import calibration
from foundation.errors import NetwallError

#: The longest run or replay netwall starts: past it, fewer or smaller sizes, or a campaign
#: (which stores each point as it goes and resumes) are the better tool.
MAX_RUN_S = 24 * 3600.0


def prepare(emulations: Sequence[Emulation], note: Callable[[str], None],
            advice: str = "") -> None:
    """Once, for the validated (not yet built) emulations a command will run: the kernel's
    note (`advice` ends it), then this host's calibration if any dilation is left to netwall."""
    if not emulations:
        return
    missing = kernel_note(emulations[0], advice)
    if missing:
        note(missing)
    if any(emu.fixed_dilation is None for emu in emulations):
        host = calibrated_host(emulations[0].capabilities, note)
        for emu in emulations:
            emu.calibrated(host)


def kernel_note(emulation: Emulation, advice: str = "") -> str | None:
    """What this kernel cannot emulate, in one line (None: everything)."""
    missing = emulation.not_emulated
    if not missing:
        return None
    verb = "is" if len(missing) == 1 else "are"
    return (f"netwall: note: this kernel has no netem, so {' and '.join(missing)} {verb} not "
            f"emulated (rates are){advice}")


def bound_duration(estimate_s: float, what: str, limit_s: float = MAX_RUN_S) -> None:
    """Refuse work that would run past the limit on this host, before building anything."""
    if estimate_s > limit_s:
        raise NetwallError(f"{what} would take about {estimate_s / 3600:,.0f} h on this host "
                           f"(limit {limit_s / 3600:g} h): use fewer or smaller sizes, fewer "
                           "iterations, shorter faults, or a smaller --dilation")


def calibrated_host(capabilities: Capabilities | None = None,
                    note: Callable[[str], None] | None = None,
                    again: bool = False) -> calibration.Calibration:
    """This machine's calibration: the cached one, or measured now on the calibration star
    (about a minute, once per machine) and cached. `note` hears what happens."""
    found = None if again else calibration.load()
    if found:
        return found
    note = note or (lambda _text: None)
    note(f"netwall: calibrating this host (once; cached in {calibration.cache_path()})")
    with Emulation(calibration.TOPOLOGY, calibration.LINK, dilation=1000,
                   capabilities=capabilities, gpu="ideal") as emu:  # the host, not a GPU
        found = measure_host(emu, lambda text: note(f"netwall: calibration: {text}"))
    try:
        calibration.save(found)
    except (OSError, NetwallError) as e:
        note(f"netwall: note: could not cache the calibration ({e}); it will be measured "
             "again")
    note(f"netwall: {found.summary()}")
    return found


def measure_host(emu: Emulation, progress: Callable[[str], None]) -> calibration.Calibration:
    """Measure what this host carries faithfully (emulator.models.calibration) on a running
    emulation of the calibration star (calibration.TOPOLOGY, LINK): timed batches of
    all-reduce calls, unproven, at the dilations the calibration asks for."""
    batches = emu.batches

    def timed(size: int, dilation: float) -> tuple[float, float]:
        request = emu.spec.run_request("allreduce", "ring", size, iters=calibration.ITERS)
        plan = emu.dilate(dilation)
        batches.calls(plan, request, 1)  # warm-up
        return batches.timed(plan, request).time_s, request.model_s

    big = emu.spec.run_request("allreduce", "ring", calibration.BANDWIDTH_SIZE)
    small = emu.spec.run_request("allreduce", "ring", calibration.LATENCY_SIZE)
    return calibration.measure(timed, big.cost.injection_gbps,
                               small.model_s, len(small.schedule.steps), emu.tolerance,
                               progress)
