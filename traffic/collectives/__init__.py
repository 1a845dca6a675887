"""Collective algorithms as pure data, one short module per family.

`base` holds the model (Move, Schedule); `ring`, `tree`, `halving`, `hierarchical`, `rooted`
and `pairwise` build schedules; `buffers` says what each rank starts with and must end with
and runs schedules on numpy; `check` validates them. `traffic.schedule` is the public face.
"""
