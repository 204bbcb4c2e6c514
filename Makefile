# Two entry points, each doing its own set-up on a fresh machine with Python 3.11:
#   make app    start the dashboard on http://127.0.0.1:8501
#   make test   run the whole test suite (what .ci/run calls)
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: app test lint

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml setup.py kamoe/nn/_kanfast.c
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q -r requirements-dev.txt
	$(BIN)/pip install -q --no-deps -e .
	touch $(STAMP)

app: $(STAMP)
	$(BIN)/streamlit run app.py --server.address=127.0.0.1 --server.port=8501

test: $(STAMP)
	$(BIN)/ruff check kamoe tests app.py pages setup.py
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check kamoe tests app.py pages setup.py
