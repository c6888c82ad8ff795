# Two commands for a fresh machine: `make run` and `make test`. Both build .venv themselves.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# ECharts for the portal comes from the npm registry (version and integrity pinned in web/package-lock.json)
# and is served by the hub and the node themselves (the shared web layer's static files): an intranet
# without internet loads nothing from a CDN.
VENDOR := ggzy/web/static/vendor
ECHARTS := $(VENDOR)/echarts.min.js
# Swagger UI for /docs, the same way (npm package swagger-ui-dist): an intranet has no CDN either.
SWAGGER := $(VENDOR)/swagger-ui/swagger-ui-bundle.js

.PHONY: run test lint typecheck unit bench docs clean assets

assets: $(ECHARTS) $(SWAGGER)

$(ECHARTS) $(SWAGGER) &: web/package.json web/package-lock.json
	cd web && npm ci --no-audit --no-fund --ignore-scripts
	mkdir -p $(VENDOR)/swagger-ui
	cp web/node_modules/echarts/dist/echarts.min.js $(ECHARTS)
	cp web/node_modules/echarts/LICENSE $(VENDOR)/echarts.LICENSE
	cp web/node_modules/swagger-ui-dist/swagger-ui-bundle.js web/node_modules/swagger-ui-dist/swagger-ui.css \
	   web/node_modules/swagger-ui-dist/LICENSE $(VENDOR)/swagger-ui/

$(STAMP): pyproject.toml $(ECHARTS) $(SWAGGER)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/ggzy demo

test: $(STAMP) lint typecheck unit

lint: $(STAMP)
	$(BIN)/ruff check ggzy tests bench tools
	$(BIN)/ruff format --check ggzy tests bench tools

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest -q --durations=15

bench: $(STAMP)
	$(BIN)/python bench/validate.py

docs: $(STAMP)
	$(BIN)/python tools/gen_docs.py

clean:
	rm -rf $(VENV) web/node_modules $(ECHARTS) $(VENDOR)/echarts.LICENSE $(VENDOR)/swagger-ui var .pytest_cache .mypy_cache .ruff_cache
