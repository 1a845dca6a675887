"""netwall's version, as installed (results and campaign records carry it)."""

from importlib.metadata import PackageNotFoundError, version


def netwall_version() -> str:
    try:
        return version("netwall")
    except PackageNotFoundError:
        return "unknown"
