"""Training: the LIMA recipe on transformers' Trainer (PEFT for LoRA/QLoRA)."""
