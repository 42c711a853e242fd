# The README's commands: `make up`, `make test`, `make install`, `make bench`.
# Works on a fresh Debian machine as root (system packages come from apt when missing).

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: up install system-deps test-tools test bench clean

install: system-deps $(VENV)/.installed

# Installs what is missing, and only that.
system-deps:
	@missing=""; \
	command -v ffmpeg >/dev/null 2>&1 || missing="$$missing ffmpeg"; \
	command -v redis-server >/dev/null 2>&1 || missing="$$missing redis-server"; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	$(PYTHON) -c "import venv, ensurepip" >/dev/null 2>&1 || missing="$$missing python3-venv"; \
	[ -x /usr/bin/chromium ] || missing="$$missing chromium"; \
	command -v docker-compose >/dev/null 2>&1 || missing="$$missing docker-compose"; \
	if [ -n "$$missing" ]; then \
		echo "installing system packages:$$missing"; \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	fi

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	# The CPU build first, so nothing below asks for a CUDA one.
	$(PIP) install -q torch==2.13.0
	# Pretrained musicnn weights; --no-deps keeps TensorFlow and an old numpy out.
	$(PIP) install -q --no-deps musicnn==0.1.0
	$(PIP) install -q -e '.[test]'
	touch $@

# The whole service on this machine: Redis (started when none answers), one worker,
# and the API with the page on PORT (default 8000). Ctrl-C stops everything.
up: install
	$(PY) deploy/run_local.py

# Tools the deployment tests run that are not Python packages: nginx (for `nginx -t` on
# deploy/nginx.conf), Debian's package unpacked into build/ rather than installed, so no
# web server is set up on this machine. docker-compose comes from system-deps.
NGINX_BIN := build/nginx/usr/sbin/nginx
test-tools: $(NGINX_BIN)

$(NGINX_BIN):
	rm -rf build/nginx-debs && mkdir -p build/nginx-debs
	cd build/nginx-debs && { apt-get download nginx nginx-common 2>/dev/null || \
		{ $(SUDO) apt-get update -qq && apt-get download nginx nginx-common; }; }
	for deb in build/nginx-debs/*.deb; do dpkg -x "$$deb" build/nginx; done
	rm -rf build/nginx-debs
	test -x $@

# pytest exits 5 when it collects no test, which fails this target as it should.
test: install test-tools
	$(PY) -m pytest

bench: install
	$(PY) tests/benchmarks/bench_engine.py
	$(PY) tests/benchmarks/scale_proof.py
	$(PY) tests/benchmarks/decode_cost.py
	$(PY) tests/benchmarks/slow_clients.py
	$(PY) tests/benchmarks/redis_fsync.py
	$(PY) tests/benchmarks/drills.py
	$(PY) tests/benchmarks/library_scan.py
	$(PY) tests/benchmarks/batch_throughput.py
	$(PY) tests/benchmarks/poll_load.py
	$(PY) tests/benchmarks/cancel_check.py

clean:
	rm -rf $(VENV) .pytest_cache tests/artifacts var build
