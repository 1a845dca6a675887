"""Everything that touches the kernel: namespaces, netlink, qdiscs, BPF, cleanup records."""
