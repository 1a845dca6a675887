"""netwall's benchmarks: each module measures one thing against a referee in the same run.

`sudo ./netwall.sh bench` runs them all and rewrites BENCHMARKS.md.
"""
