"""Gunicorn settings for the `web` process (see Procfile).

Environment: QS_BIND (default 127.0.0.1:$PORT, PORT as set by honcho or the
host, else 5000) and QS_WEB_WORKERS (default 2, one per core of a small machine).
"""

import os

bind = os.environ.get("QS_BIND", f"127.0.0.1:{os.environ.get('PORT', '5000')}")
workers = int(os.environ.get("QS_WEB_WORKERS", "2"))
# Sync workers: each request is short (a few Redis calls); slow clients are
# expected to sit behind a reverse proxy that buffers them.
worker_class = "sync"
timeout = 30
graceful_timeout = 20
accesslog = "-"
# No query strings in the access log: status links carry tokens.
access_log_format = '%(h)s "%(m)s %(U)s %(H)s" %(s)s %(b)s %(M)sms'
