"""Model specs, loading, GGUF conversion, tokenizer files; device/dtype/attention; what a forward takes."""
