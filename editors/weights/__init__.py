"""Weight editing, one module per step (after kmeng01/rome): layer_stats -> C, compute_key -> k*,
compute_value -> v*, rank_one -> the closed-form update, deltas -> apply / undo / persist."""
