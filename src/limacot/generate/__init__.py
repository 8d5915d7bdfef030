"""Batched, seeded, resumable generation (`limacot generate`)."""
