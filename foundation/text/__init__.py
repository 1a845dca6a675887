"""Text for terminals and logs: progress and tables."""
