# The two commands of the README: `make run` starts the service, `make test`
# runs the tests. Both set up what they need first (a virtual environment in
# .venv, compiled translations, the DSFR assets) and redo it only when its
# sources change.

SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip install --quiet --disable-pip-version-check
APP_STAMP := $(VENV)/.installed-app
TEST_STAMP := $(VENV)/.installed-test
DSFR_STAMP := web/static/dsfr/.installed
DSFR_DIST := node_modules/@gouvfr/dsfr/dist
DSFR_FILES := dsfr.min.css dsfr.module.min.js dsfr.nomodule.min.js fonts icons favicon utility
TRANSLATIONS := queue_service/translations
CATALOGS := $(patsubst %.po,%.mo,$(wildcard $(TRANSLATIONS)/*/LC_MESSAGES/messages.po))

.PHONY: run test install install-test translations-update clean

run: install
	$(BIN)/qs dev

test: install-test
	$(BIN)/pytest $(PYTEST_ARGS)

install: $(APP_STAMP) $(CATALOGS) $(DSFR_STAMP)

install-test: install $(TEST_STAMP)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(APP_STAMP): setup.cfg pyproject.toml | $(BIN)/python
	$(PIP) -e .
	touch $@

$(TEST_STAMP): $(APP_STAMP)
	$(PIP) -e '.[test]'
	touch $@

%.mo: %.po | $(APP_STAMP)
	$(BIN)/pybabel compile --statistics -i $< -o $@

# The DSFR comes from the npm registry; only what pages use is copied next to
# the app's static files. Without npm the pages fall back to css/app.css.
$(DSFR_STAMP): package.json package-lock.json
	@if command -v npm >/dev/null 2>&1; then \
	  npm ci --ignore-scripts --no-audit --no-fund --loglevel=error && \
	  rm -rf web/static/dsfr && mkdir -p web/static/dsfr && \
	  for item in $(DSFR_FILES); do cp -R $(DSFR_DIST)/$$item web/static/dsfr/; done && \
	  touch $@; \
	else \
	  echo "warning: npm not found; pages will use the service's own stylesheet only (install Node.js and npm for the DSFR)"; \
	fi

# After changing translatable text: refresh the catalogue and the .po files.
translations-update: $(APP_STAMP)
	$(BIN)/pybabel extract --no-location -F web/babel.cfg -k N_ -o $(TRANSLATIONS)/messages.pot queue_service web worker
	$(BIN)/pybabel update -i $(TRANSLATIONS)/messages.pot -d $(TRANSLATIONS)

clean:
	rm -rf $(VENV) node_modules web/static/dsfr
	find $(TRANSLATIONS) -name '*.mo' -delete
