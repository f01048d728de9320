PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
DB     ?= data/demo.db
# rules eval gate on the corpus's test split: the figures the shipped pack reaches there, rounded
# down to 0.01 (claim recall 0.675, statement recall 0.674, alert precision 0.899 on 2026-11-29), so a
# rule change that loses recall or precision fails CI. Raise them when the pack improves.
EVAL_MIN_RECALL    ?= 0.67
EVAL_MIN_PRECISION ?= 0.89

.PHONY: demo test eval install install-test bench clean

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
	$(BIN)/claimwatch rules check rules/
	$(BIN)/claimwatch run --config config/demo.yaml --once --log-level WARNING
	$(BIN)/claimwatch stats --db $(DB)
	$(BIN)/claimwatch hits --db $(DB)
	$(BIN)/claimwatch incidents --db $(DB)
	$(BIN)/claimwatch incident show 1 --db $(DB)
	@echo "Alerts written to data/demo-alerts.jsonl; try: .venv/bin/claimwatch search 'الدولة' --db $(DB)"

test: install
	$(BIN)/python -m pytest
	$(MAKE) eval

eval: install
	@if ls corpus/*.jsonl >/dev/null 2>&1; then \
		$(BIN)/claimwatch rules eval rules/ corpus/*.jsonl --split test --no-show-misses \
			--min-recall $(EVAL_MIN_RECALL) --min-precision $(EVAL_MIN_PRECISION); \
	else echo "no corpus/*.jsonl: rules eval skipped"; fi

bench: install
	$(BIN)/python bench/import_bench.py
	$(BIN)/python bench/match_bench.py
	$(BIN)/python bench/alert_bench.py
	$(BIN)/python bench/pipeline_bench.py
	$(BIN)/python bench/search_bench.py
	$(BIN)/python bench/incident_bench.py

clean:
	rm -rf $(VENV) data/demo.db*
