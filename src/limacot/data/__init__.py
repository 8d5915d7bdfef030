"""Data pipeline: readers -> Conversation records -> selection -> chat-template rendering."""
