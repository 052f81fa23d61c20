"""Gunicorn settings for the `web` process (see Procfile).

Environment: QS_BIND (default 127.0.0.1:$PORT, PORT as set by honcho or the
host, else 5000) and QS_WEB_WORKERS (default 2, one per core of a small machine).
"""

import os
import shutil
import tempfile

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

# Prometheus multiprocess mode (web/metrics.py): each worker writes its request
# latency histogram to files in this folder and a scrape, answered by any
# worker, adds them up. The variable is set here, in the master, before any
# worker imports prometheus-client. A folder of this master's own, emptied at
# start and removed at exit, so no figure of an earlier run lingers.
metrics_dir = os.environ.setdefault(
    "PROMETHEUS_MULTIPROC_DIR", os.path.join(tempfile.gettempdir(), f"qs-prometheus-{os.getpid()}")
)


def on_starting(server):
    shutil.rmtree(metrics_dir, ignore_errors=True)
    os.makedirs(metrics_dir)


def child_exit(server, worker):
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid, metrics_dir)


def on_exit(server):
    shutil.rmtree(metrics_dir, ignore_errors=True)
