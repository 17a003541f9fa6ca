# Two commands for a fresh machine with Python 3.11:  make run  |  make test
# make run installs what the studio needs (requirements.txt); make test and make bench add the
# test and benchmark tools (requirements-dev.txt) to the same .venv.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
RUN_STAMP := $(VENV)/.installed-run
DEV_STAMP := $(VENV)/.installed-dev

.PHONY: run test lint bench clean

$(RUN_STAMP): requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	touch $(RUN_STAMP)

$(DEV_STAMP): $(RUN_STAMP) requirements-dev.txt
	$(PY) -m pip install -q -r requirements-dev.txt
	touch $(DEV_STAMP)

run: $(RUN_STAMP)
	$(PY) main.py

# pytest (two workers: many tests wait on the studio's engine process) and ruff both run;
# the target fails if either failed
test: $(DEV_STAMP)
	SDL_VIDEODRIVER=dummy SDL_AUDIODRIVER=dummy $(PY) -m pytest -q -n 2; tests=$$?; \
	$(VENV)/bin/ruff check .; lint=$$?; \
	test $$tests -eq 0 -a $$lint -eq 0

lint: $(DEV_STAMP)
	$(VENV)/bin/ruff check .

bench: $(DEV_STAMP)
	$(PY) -m bench.tokenizer
	$(PY) -m bench.sampling

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
