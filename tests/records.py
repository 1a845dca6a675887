"""Well-formed stored records (emulator.experiments.schema) for tests of stores, merges and
readers: each as the runner or compare would store it, small."""

from __future__ import annotations

from emulator.experiments.campaign import Point


def point(experiment: str = "main", size: int = 65536, topology: str = "pair") -> Point:
    return Point(experiment, topology, "copper-800g", "ideal", "optical-800g", None, 1000.0,
                 "allreduce", "ring", size, (), 0, 0, 5, 1)


def provenance(point_id: str, campaign: str = "c") -> dict:
    return {"id": point_id, "campaign": campaign, "netwall": "0.1.0",
            "host": {"node": "here", "kernel": "6", "python": "3.12"},
            "time": "2026-01-01T00:00:00+00:00"}


def measured(p: Point | None = None, campaign: str = "c", busbw: float = 40.0) -> dict:
    """A measured point's record (the runner's shape, results trimmed to what is read)."""
    p = p or point()
    return dict(provenance(p.id, campaign), kind="point", status="ok", point=p.params(),
                settings={"dilation": 1000.0},
                result={"time_s": 1e-5, "model_emulated_time_s": 1.1e-5, "busbw_gbps": busbw,
                        "algbw_gbps": busbw / 2, "joules_per_gb": 0.5, "model_error": -0.1,
                        "check": True, "retransmitted_bytes": 0,
                        "fidelity": {"faithful": True, "host_error": 0.01, "flags": []},
                        "slowdown": 1234.0, "faults_not_struck": [], "dilation": 1000.0})


def skipped(p: Point | None = None, campaign: str = "c") -> dict:
    p = p or point()
    return dict(provenance(p.id, campaign), kind="point", status="skipped", point=p.params(),
                reason="reach", message="copper-800g reaches 2 m")
