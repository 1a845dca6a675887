"""netwall traffic: collective schedules, the wire header and the per-GPU agent."""
