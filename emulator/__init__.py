"""netwall's emulator: link profiles, kernel probing, the emulated network and the Python API.

`from emulator import Emulation` is the entry point for scripts; see emulator.emulation.
It is loaded on first use, so the pure modules (and the agents) import without it.
"""

from foundation.errors import NetwallError

__all__ = ["Emulation", "NetwallError"]


def __getattr__(name: str):
    if name == "Emulation":
        from emulator.emulation import Emulation

        return Emulation
    raise AttributeError(f"module 'emulator' has no attribute {name!r}")
