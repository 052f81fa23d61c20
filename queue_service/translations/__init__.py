"""The service's translation catalogue: one for the pages, the messages and the errors.

The web app (Flask-Babel) and the messages the worker composes
(queue_service.notifications) both read the compiled catalogue from this
folder, so neither reads the other's files. `make translations-update`
extracts the texts of queue_service, web and worker into messages.pot and
merges them into each language's messages.po; `make` compiles the .mo files.
"""

from pathlib import Path

# The folder holding <language>/LC_MESSAGES/messages.po (and .mo, once compiled).
CATALOG_DIRECTORY = Path(__file__).resolve().parent
# The gettext domain: the catalogue's file name.
DOMAIN = "messages"
