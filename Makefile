PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
DB     ?= data/demo.db
# rules eval gate on the corpus's test split, a point or two below the figures the shipped pack
# reaches there (claim recall 0.807, statement recall 0.824, alert precision 0.897 on the 463 test
# items on 2026-12-01, after the seventeenth rule round), so a rule change that loses recall or
# precision fails CI. Raise them when the pack improves. The pack's learned classifier
# (rules/classifier.yml) is part of the matcher, so the gate is of the rules and the classifier
# together; with it (2026-12-01, eleventh session) test reads alert precision 0.866, recall 0.908
# (claim 0.933, statement 0.840): the precision floor fails, left for the coordinator to decide.
EVAL_MIN_RECALL    ?= 0.79
EVAL_MIN_PRECISION ?= 0.89

.PHONY: demo test eval install install-test bench clean browser screenshots web-bench

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip

# setup.py builds the optional C extensions: the matcher's scan (monitor/rules/_scan.c) and the
# classifier's features (monitor/rules/_features.c)
$(VENV)/.installed: pyproject.toml setup.py monitor/rules/_scan.c monitor/rules/_features.c | $(BIN)/python
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

# Headless Chromium for the browser tests (tests/test_web_browser.py) and `make screenshots`:
# Debian's chromium + chromium-driver, installed when missing (needs root or sudo).
browser:
	@if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then :; \
	elif command -v apt-get >/dev/null 2>&1; then \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium chromium-driver fonts-noto-core >/dev/null \
			|| echo "warning: could not install chromium (browser tests will be skipped, or fail in CI)"; \
	else echo "warning: no apt-get: install chromium and chromedriver by hand for the browser tests"; fi

test: install browser
	$(BIN)/python -m pytest
	$(MAKE) eval

eval: install
	@if ls corpus/*.jsonl >/dev/null 2>&1; then \
		$(BIN)/claimwatch rules eval rules/ corpus/ --split test --no-show-misses \
			--min-recall $(EVAL_MIN_RECALL) --min-precision $(EVAL_MIN_PRECISION); \
	else echo "no corpus/*.jsonl: rules eval skipped"; fi

bench: install
	$(BIN)/python bench/import_bench.py
	$(BIN)/python bench/match_bench.py
	$(BIN)/python bench/alert_bench.py
	$(BIN)/python bench/pipeline_bench.py
	$(BIN)/python bench/search_bench.py
	$(BIN)/python bench/incident_bench.py
	$(BIN)/python bench/web_bench.py

screenshots: install browser
	$(BIN)/python tests/web_screenshots.py

web-bench: install
	$(BIN)/python bench/web_bench.py

clean:
	rm -rf $(VENV) data/demo.db*
