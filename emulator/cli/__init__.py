"""The user interface: argument parsing, commands, the console."""
