"""One emulated cluster over several hosts: SSH control, workers, and their wire format."""
