# The two commands of the README do all set-up themselves: `make demo` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
# torch==2.13.0: on a machine whose pip is pointed at a local CPU wheel this takes that wheel; from the
# public index on Linux it is the ordinary CUDA build. A torch already in the venv is kept as it is.
TORCH_SPEC ?= torch==2.13.0
STAMP := $(VENV)/.installed
DEMO_OUT ?= reports/demo

.PHONY: install demo test lint bench lab app notebooks check-notebooks clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/python -m pip install --progress-bar off "$(TORCH_SPEC)"
	$(BIN)/python -m pip install --progress-bar off -e ".[lab,app,browser,dev,torchjd,ray]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/mtl-lab run --data related --methods equal,uncertainty,pcgrad --hidden 8 --lr 0.02 --epochs 100 \
		--batch-size 600 --out $(DEMO_OUT)

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .

bench: $(STAMP)
	$(BIN)/python benchmarks/run_all.py

# Re-execute notebooks and store their outputs, with the CPU code paths nbval checks them with
# (notebooks/pinned_cpu.py): `make notebooks` for all, `make notebooks NB=notebooks/02_static_weights_and_adam.ipynb`.
notebooks: $(STAMP)
	$(BIN)/python notebooks/pinned_cpu.py $(or $(NB),notebooks/*.ipynb notebooks/coursework/*.ipynb)

# Before storing outputs: strict nbval on several CPU code paths of this machine (notebooks/check_any_machine.py),
# so that no stored output depends on one processor's rounding. `make check-notebooks NB=… CPU_PATHS=native,aten-default`.
check-notebooks: $(STAMP)
	$(BIN)/python notebooks/check_any_machine.py $(if $(CPU_PATHS),--paths $(CPU_PATHS)) $(NB)

lab: $(STAMP)
	$(BIN)/mtl-lab lab

app: $(STAMP)
	$(BIN)/mtl-lab app

clean:
	rm -rf $(VENV) reports .pytest_cache
