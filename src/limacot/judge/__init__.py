"""Generation for test prompts and pairwise judging (the LIMA protocol)."""
