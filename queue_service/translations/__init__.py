"""The service's translation catalogues, in two gettext domains.

- `applicant` (APPLICANT_DOMAIN): everything an applicant can read: the
  public pages and their errors, the emails and the SMS. One catalogue per
  language of reference.LOCALES; a language is offered to applicants once its
  catalogue is complete (reference.OFFERED_LOCALES, checked by
  tests/test_translations.py).
- `messages` (STAFF_DOMAIN): the staff pages and the staff API, in French
  only (English is the source text).

The web app (Flask-Babel, both domains merged, `applicant` last so that it
wins) and the messages the worker composes (queue_service.notifications,
`applicant` only) read the compiled catalogues from this folder, so neither
reads the other's files. `make translations-update` extracts the texts into
applicant.pot (web/babel-applicant.cfg) and messages.pot (web/babel.cfg, less
what applicant.pot holds: see split.py) and merges them into each language's
.po files; `make` compiles the .mo files. docs/languages.md says how to
review, correct and add a language.
"""

from pathlib import Path

# The folder holding <language>/LC_MESSAGES/<domain>.po (and .mo, once compiled).
CATALOG_DIRECTORY = Path(__file__).resolve().parent
# The gettext domain of what applicants read: pages, errors, emails, SMS.
APPLICANT_DOMAIN = "applicant"
# The gettext domain of staff text (Flask-Babel's default name).
STAFF_DOMAIN = "messages"
# The domains the web app merges, in order: a message of both is read from the last.
WEB_DOMAINS = (STAFF_DOMAIN, APPLICANT_DOMAIN)
