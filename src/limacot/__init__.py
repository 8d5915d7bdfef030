"""limacot: LIMA-style fine-tuning with Chain-of-Thought data, from data to a report."""

__version__ = "0.1.0"
