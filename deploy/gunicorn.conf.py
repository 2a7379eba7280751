"""gunicorn's settings for CLMS in production (README, *Production*): ``gunicorn --config
deploy/gunicorn.conf.py wsgi:app``, started by ``deploy/systemd/clms-web.service``.

Every value can be overridden on the command line or by ``GUNICORN_CMD_ARGS``. The logs go to
standard output and error, which systemd's journal keeps; device tokens in URLs never reach them
(clms.logs, installed by the application in each worker).
"""

import multiprocessing
import os

# where the reverse proxy (nginx, Caddy) sends requests; CLMS_TRUST_PROXY=1 lets the application
# trust its X-Forwarded-* headers
bind = os.environ.get("CLMS_BIND", "127.0.0.1:8000")
# threads wait on the database and on phones' slow uploads; processes use the cores
workers = int(os.environ.get("CLMS_WORKERS", 2 * multiprocessing.cpu_count() + 1))
worker_class = "gthread"
threads = int(os.environ.get("CLMS_THREADS", 4))
# a household visit with photos over a slow connection takes a while to arrive
timeout = 120
graceful_timeout = 30
keepalive = 5
# a worker is replaced after this many requests (a leak cannot grow without bound)
max_requests = 2000
max_requests_jitter = 200
accesslog = "-"
errorlog = "-"
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms "%(a)s"'
# the application is loaded in each worker, after the fork: no database connection is shared
preload_app = False
