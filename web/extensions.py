"""Flask extensions, created unbound here and bound to an app by create_app."""

from flask_babel import Babel
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_wtf.csrf import CSRFProtect

babel = Babel()
csrf = CSRFProtect()
# The client address comes from the socket, or from X-Forwarded-For once
# ProxyFix has applied the configured number of trusted proxies.
limiter = Limiter(key_func=get_remote_address)
