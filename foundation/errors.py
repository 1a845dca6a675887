"""The one exception type users see.

Everything a user can get wrong (a profile name, a topology file, a size) raises
NetwallError with a message that fits on one line; the CLI prints it and exits 2.
Anything else escaping is a bug and keeps its traceback.
"""


class NetwallError(Exception):
    """A user-facing error: the message is the whole story, printed without a traceback."""
