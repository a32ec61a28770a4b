# Two entry points: `make demo` (index → find-duplicates → query on a generated sample catalog)
# and `make test` (install dev dependencies, run the suite). Both build .venv themselves.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
TORCH  := torch==2.13.0
SAMPLE := sample-catalog

.PHONY: demo test test-slow install dev bench results train-default vote-lists clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# The pinned CPU build of torch goes in first so that nothing pulls a CUDA build.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q $(TORCH)
	$(BIN)/pip install -q -e .
	@touch $@

$(VENV)/.dev: $(VENV)/.installed
	$(BIN)/pip install -q -e ".[dev]"
	@touch $@

install: $(VENV)/.installed
dev: $(VENV)/.dev

demo: install
	rm -rf $(SAMPLE) indexes/$(SAMPLE)
	$(BIN)/python -m dedup.synth $(SAMPLE)
	$(BIN)/dedup index $(SAMPLE)
	$(BIN)/dedup find-duplicates --index indexes/$(SAMPLE)
	$(BIN)/dedup query $(SAMPLE)/copies/img_0001_copy0.jpg --index indexes/$(SAMPLE) -k 3

# The review page's tests drive Debian's chromium headless; CI runs as root and installs it.
test: dev
	@command -v chromium >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq chromium >/dev/null; } \
	  || echo "warning: chromium could not be installed; the browser tests will be skipped"
	$(BIN)/ruff check dedup tests benchmarks recipes
	$(BIN)/python -m pytest -q -m "not slow"

# The long tests (a process killed mid-run, the stateful safety property); CI runs them after `make test`.
test-slow: dev
	$(BIN)/python -m pytest -q -m slow

bench: install
	$(BIN)/pip install -q -e ".[bench]"
	$(BIN)/python -m benchmarks.seed_digits

# The shipped encoder's held-out benchmarks, then the model card and the README's figures from them.
results: install
	$(BIN)/pip install -q -e ".[bench]"
	$(BIN)/python -m benchmarks.neardup --model default
	$(BIN)/python -m benchmarks.uploads --json benchmarks/results/uploads.json
	$(BIN)/python -m benchmarks.icons --model default
	$(BIN)/python -m benchmarks.cards --model default
	$(BIN)/python -m benchmarks.documents --model default
	$(BIN)/python -m benchmarks.sizes --model default --json benchmarks/results/sizes.json
	$(BIN)/python -m recipes.model_card

train-default: install
	$(BIN)/pip install -q -e ".[train,bench]"
	$(BIN)/python -m recipes.train_default
	$(BIN)/python -m recipes.calibrate_verifier
	$(MAKE) results

vote-lists: install
	$(BIN)/python -m recipes.vote_lists

clean:
	rm -rf $(SAMPLE) indexes/$(SAMPLE) .pytest_cache .hypothesis
