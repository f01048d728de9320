PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
DB     ?= data/demo.db

.PHONY: demo test install install-test bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -e '.[test,web]'
	touch $@

install: $(VENV)/.installed

demo: install
	rm -f $(DB) $(DB)-wal $(DB)-shm data/demo-alerts.jsonl
	mkdir -p data
	$(BIN)/claimwatch import samples/telegram/result.json samples/x/tweets.jsonl --db $(DB) --rules rules/
	$(BIN)/claimwatch stats --db $(DB)

test: install
	$(BIN)/python -m pytest

bench: install
	$(BIN)/python bench/import_bench.py
	$(BIN)/python bench/match_bench.py

clean:
	rm -rf $(VENV) data/demo.db*
