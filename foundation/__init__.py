"""netwall's foundation, below every other package: the one error type, units, bounded input,
the safe writer, the version, host lists and text for terminals and logs.

It imports nothing of netwall's own, so emulator/, topologies/ and traffic/ all stand on it.
"""
