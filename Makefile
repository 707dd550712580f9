# The two commands a newcomer needs:  make demo  and  make test  (see README.md).
# They need only cargo and python3; the emulator is installed into .venv on first use.

PYTHON ?= python3
CARGO ?= cargo
VENV := .venv
EVENT ?= events/manual-dry-run.json
DRY_RUN ?=

.PHONY: venv build test lint demo invoke clean

## venv: the local AWS emulator (moto server) in a project-local virtualenv
venv: $(VENV)/.installed
$(VENV)/.installed: requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --disable-pip-version-check --quiet -r requirements-dev.txt
	touch $@

## build: the optimised binary (target/release/exfil-responder)
build:
	$(CARGO) build --release --locked

## test: the whole suite (unit, call sequences with aws-smithy-mocks, moto integration, CLI, Runtime API)
test: venv
	$(CARGO) test --locked

## lint: formatting and clippy, warnings denied
lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets --locked -- -D warnings

## demo: a real run against the emulator: seed an account, respond to findings, show before/after
demo: venv
	$(CARGO) build --locked
	$(VENV)/bin/python scripts/demo.py

## invoke: run the CLI on EVENT with your current AWS credentials (DRY_RUN=1 to only plan)
invoke:
	$(CARGO) run --locked --quiet -- invoke --event $(EVENT) $(if $(DRY_RUN),--dry-run,)

clean:
	$(CARGO) clean
	rm -rf $(VENV)
