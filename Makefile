# Freshet: `make up` starts the development cluster and applies every migration; `make test` runs every test.
SWIFT ?= swift
PGDATA ?= .pgdata
MIGRATE = $(SWIFT) run --quiet migrate

.PHONY: deps build up test bench stop clean

deps:
	@scripts/install-deps.sh

build: deps
	$(SWIFT) build

up: build
	@url=$$($(MIGRATE) cluster start --path $(PGDATA)) && \
	  $(MIGRATE) up --url "$$url" && \
	  echo && echo "The development cluster runs in $(PGDATA). Connect with:" && echo "  psql '$$url'" && \
	  echo "Point the runner at it:" && echo "  export DATABASE_URL='$$url'"

test: deps
	$(SWIFT) build --build-tests
	$(MIGRATE) verify --offline
	$(SWIFT) test --skip-build
	$(MIGRATE) test

bench: build
	scripts/bench.sh

stop:
	@if [ -d $(PGDATA) ]; then $(MIGRATE) cluster stop --path $(PGDATA); fi

clean: stop
	rm -rf .build $(PGDATA)
