"""The one exception type users see.

Everything a user can get wrong (a profile name, a topology file, a size) raises
NetwallError with a message that fits on one line; the CLI prints it and exits 2 (3 for a
stalled collective, Stalled).
Anything else escaping is a bug and keeps its traceback.
"""


class NetwallError(Exception):
    """A user-facing error: the message is the whole story, printed without a traceback."""

    status = 2  # the exit status: bad input, or an environment netwall cannot use


class Stalled(NetwallError):
    """A collective made no progress in time (a link down that never came back): the input
    was fine, the run stalled, so scripts can tell it from bad input by its exit status."""

    status = 3
