"""asyncssh, imported without the warnings its import raises.

Importing asyncssh makes cryptography (from 51) and Debian's pyOpenSSL warn, a dozen lines
of library source, that DSA is deprecated: above netwall's one line on every command that
spreads a cluster over hosts. netwall offers and accepts no DSA keys of its own making
(OpenSSH's own configuration decides), so only these warnings, and only while asyncssh is
imported, are silenced; any warning raised later stays visible.
"""

from __future__ import annotations

import warnings

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="DSA is deprecated")
    import asyncssh

__all__ = ["asyncssh"]
