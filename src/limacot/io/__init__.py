"""Foundations: atomic writes, journals, fingerprints, hub files, YAML configs, the CLI's console."""
