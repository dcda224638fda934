"""Experiment plumbing: reading run directories back into tables and curves (`results`)."""
