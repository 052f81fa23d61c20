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
ALTCHA_STAMP := web/static/altcha/.installed
ALTCHA_DIST := node_modules/altcha/dist
# The widget without bundled styles and workers (the pages' CSP allows neither inline
# styles nor blob: workers), its PBKDF2 worker, and its licence.
ALTCHA_FILES := $(ALTCHA_DIST)/external/altcha.min.js $(ALTCHA_DIST)/external/altcha.css node_modules/altcha/LICENSE.txt
TRANSLATIONS := queue_service/translations
# Every catalogue of both domains (applicant, messages), compiled: the .mo files are not committed.
CATALOGS := $(patsubst %.po,%.mo,$(wildcard $(TRANSLATIONS)/*/LC_MESSAGES/*.po))

.PHONY: run test install install-test translations-update clean

run: install
	$(BIN)/qs dev

test: install-test
	$(BIN)/pytest $(PYTEST_ARGS)

install: $(APP_STAMP) $(CATALOGS) $(DSFR_STAMP) $(ALTCHA_STAMP)

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

# The proof-of-work widget (ALTCHA) of the registration form, from the same npm install,
# served from our own static files. Without it the form works without a proof (the
# tighter per-address limit applies).
$(ALTCHA_STAMP): $(DSFR_STAMP)
	@if [ -d $(ALTCHA_DIST) ]; then \
	  rm -rf web/static/altcha && mkdir -p web/static/altcha/workers && \
	  cp $(ALTCHA_FILES) web/static/altcha/ && \
	  cp $(ALTCHA_DIST)/workers/pbkdf2.js web/static/altcha/workers/ && \
	  touch $@; \
	else \
	  echo "warning: node_modules/altcha missing; the registration form will have no proof-of-work widget"; \
	fi

# After changing translatable text: refresh both templates and every .po file.
# applicant.pot: what applicants read (web/babel-applicant.cfg); messages.pot:
# the staff text, everything else (a message of both stays in applicant.pot only).
translations-update: $(APP_STAMP)
	$(BIN)/pybabel extract --no-location -F web/babel-applicant.cfg -k N_ -o $(TRANSLATIONS)/applicant.pot queue_service web
	$(BIN)/pybabel extract --no-location -F web/babel.cfg -k N_ -o $(TRANSLATIONS)/messages.pot queue_service web worker
	$(BIN)/python -m queue_service.translations.split $(TRANSLATIONS)/messages.pot $(TRANSLATIONS)/applicant.pot
	$(BIN)/pybabel update -D applicant -i $(TRANSLATIONS)/applicant.pot -d $(TRANSLATIONS)
	$(BIN)/pybabel update -D messages -i $(TRANSLATIONS)/messages.pot -d $(TRANSLATIONS)

clean:
	rm -rf $(VENV) node_modules web/static/dsfr web/static/altcha
	find $(TRANSLATIONS) -name '*.mo' -delete
