PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
DB     ?= data/demo.db
# rules eval gates on the corpus's test split, a point or two below what the shipped pack reaches
# there, so a change that loses recall or precision fails CI. Raise them when the pack improves.
# Two gates (2026-12-01, eleventh session, after the eighteenth rule round):
# - the pack as shipped, rules + the learned classifier (rules/classifier.yml): claim recall 0.924,
#   statement recall 0.832, alert precision 0.872 (recall 0.900);
# - the rules alone (--no-classifier), so a rule change cannot hide behind the classifier: claim
#   recall 0.815, statement recall 0.824, alert precision 0.898.
# The classifier trades precision for recall (test F1 0.870 -> 0.886; the held-out set outside the
# repository 0.822 -> 0.834): docs/rules.md, "The learned classifier in the pack".
EVAL_MIN_RECALL          ?= 0.82
EVAL_MIN_PRECISION       ?= 0.86
EVAL_RULES_MIN_RECALL    ?= 0.80
EVAL_RULES_MIN_PRECISION ?= 0.89

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
			--min-recall $(EVAL_MIN_RECALL) --min-precision $(EVAL_MIN_PRECISION) && \
		$(BIN)/claimwatch rules eval rules/ corpus/ --split test --no-show-misses --no-classifier \
			--min-recall $(EVAL_RULES_MIN_RECALL) --min-precision $(EVAL_RULES_MIN_PRECISION); \
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
