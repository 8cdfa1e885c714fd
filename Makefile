# Freshet: `make up` starts the development cluster, applies every migration and starts freshet-server; `make test` runs every test.
SWIFT ?= swift
PGDATA ?= .pgdata
MIGRATE = $(SWIFT) run --quiet migrate

PG_CONFIG ?= pg_config

.PHONY: deps build up test bench stop clean extension install-extension

deps:
	@scripts/install-deps.sh

build: deps
	$(SWIFT) build

up: build
	@url=$$($(MIGRATE) cluster start --path $(PGDATA)) && \
	  $(MIGRATE) up --url "$$url" && \
	  echo && echo "The development cluster runs in $(PGDATA). Connect with:" && echo "  psql '$$url'" && \
	  echo "Point the runner at it:" && echo "  export DATABASE_URL='$$url'" && \
	  PGDATA=$(PGDATA) scripts/server.sh start "$$url"

# The extension files, generated from migrations/ (never edited, never in git).
extension: build
	$(MIGRATE) extension --dir migrations --out extension

# Installs them into `pg_config --sharedir`/extension; DESTDIR=/tmp/stage stages them instead.
install-extension: extension
	$(MAKE) -C extension install PG_CONFIG=$(PG_CONFIG) DESTDIR=$(DESTDIR)

test: deps
	$(SWIFT) build --build-tests
	$(MAKE) install-extension
	$(MIGRATE) verify --offline
	@# The gateway's tests wait on WebSocket clients that run on Swift's cooperative threads, which
	@# the other suites' blocking waits can hold for minutes: they get a process of their own.
	$(SWIFT) test --skip-build --skip GatewayTests
	$(SWIFT) test --skip-build --filter GatewayTests
	$(MIGRATE) test
	$(MIGRATE) test --extension

bench: build
	scripts/bench.sh

stop:
	@PGDATA=$(PGDATA) scripts/server.sh stop
	@if [ -d $(PGDATA) ]; then $(MIGRATE) cluster stop --path $(PGDATA); fi

clean: stop
	rm -rf .build $(PGDATA)
