"""Campaigns: sweeps as files, their runner, the result store and reports."""
