"""gunicorn's configuration for the API: the one used wherever it runs.

    gunicorn -c python:api.gunicorn_conf [--bind HOST:PORT]

`make up` (deploy/run_local.py), the API image (deploy/Dockerfile's CMD, which compose and the
Kubernetes Deployment run as it is) and the tests' ``start_api`` (tests/support/stack.py) all
start gunicorn this way. It is a module of the api package rather than a file in deploy/ because
the API image copies api/ and not deploy/, and ``python:api.gunicorn_conf`` finds it wherever the
package imports, with no path to get wrong. Options on the command line override it: the image
binds 0.0.0.0:8000, the tests a free port (and one process).

Values come from shared/service/settings.py (Settings.from_env, read once in the master); each
worker process's app reads them as it is created (api.create_app), and the worker class,
api/gunicorn_worker.py, takes its deadlines from that app's settings.
"""
from shared.service import logs, metrics_dir
from shared.service.settings import Settings

_settings = Settings.from_env()

wsgi_app = "api:create_app()"
bind = [f"{_settings.host}:{_settings.port}"]

# gevent: one greenlet per connection, so slow clients cannot take every thread (measured in
# docs/hardening.md, "Slow clients"), with the deadlines and JSON refusals of api/gunicorn_worker.py.
worker_class = "api.gunicorn_worker.ApiWorker"
workers = _settings.api_workers
worker_connections = _settings.api_worker_connections
keepalive = _settings.keepalive_s

# The worker's heartbeat: a process that has not run its event loop for this long is replaced.
timeout = 120

# gunicorn's own limits on a request's head (its defaults, named here): a longer request line is
# refused with 414, more or longer header fields with 431, both as the service's JSON.
limit_request_line = 4094
limit_request_fields = 100
limit_request_field_size = 8190

accesslog = "-"
# LOG_FORMAT=json: gunicorn's error and access lines, and the application's (the root logger, which
# create_app then leaves as it is), one JSON object each (shared/service/logs.py); text: as gunicorn
# writes them, and the application's as create_app sets them up.
logconfig_dict = logs.gunicorn_config(_settings.log_format)


# Prometheus metrics (api/metrics.py): every process writes its values to files in a folder of this
# gunicorn's own under METRICS_DIR, chosen here in the master before any process imports
# prometheus_client (the workers inherit it); a process that exits has its live gauges removed.
def on_starting(server):
    metrics_dir.use(_settings.metrics_dir, "api")


def child_exit(server, worker):
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


# No control socket (gunicorn 25+ opens one at $HOME/.gunicorn/gunicorn.ctl by default): nothing
# here uses it, every gunicorn on a machine would share that one path, and the image's home is
# not writable.
control_socket_disable = True
