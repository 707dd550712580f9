# The two commands a newcomer needs:  make demo  and  make test  (see README.md).
# They need only cargo and python3; everything else is installed into .venv on first use.

PYTHON ?= python3
CARGO ?= cargo
# CI keeps it outside the clone (.ci/run): cargo-lambda's zig linker wrappers name its path, so a
# venv at a fixed place keeps the release builds cached between clones.
VENV ?= .venv
BIN := $(abspath $(VENV))/bin
# cargo-lambda, sam and cfn-lint come from the venv; the tests start its moto_server.
export PATH := $(BIN):$(PATH)
export MOTO_SERVER := $(BIN)/moto_server
export SAM_CLI_TELEMETRY := 0
TARGET_DIR := $(or $(CARGO_TARGET_DIR),$(CURDIR)/target)
EVENT ?= events/manual-dry-run.json
DRY_RUN ?=
# The Lambda architecture to package for: arm64 (the template's default) or x86_64.
ARCH ?= arm64
HOST_ARCH := $(if $(filter aarch64 arm64,$(shell uname -m)),arm64,x86_64)
LAMBDA_FLAG = $(if $(filter arm64,$(1)),--arm64,--x86-64)
# The release bootstrap for this machine's architecture, run by the end-to-end tests.
BOOTSTRAP := $(TARGET_DIR)/lambda/host/exfil-responder/bootstrap

.PHONY: venv checkov-venv target build test lint validate bootstrap package release sam-build docs terraform-check demo watch invoke invoke-local cli fuzz bench clean

## venv: the emulator, cargo-lambda, SAM CLI and the linters, pinned, in a project-local virtualenv
venv: $(VENV)/.installed
$(VENV)/.installed: requirements-dev.txt constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --disable-pip-version-check --quiet -r requirements-dev.txt -c constraints.txt
	touch $@

## target: the Rust standard library for the Lambda architecture (cargo-lambda cross-compiles)
target:
	@case "$(ARCH)" in arm64) triple=aarch64-unknown-linux-gnu ;; *) triple=x86_64-unknown-linux-gnu ;; esac; \
	rustup target list --installed | grep -qx "$$triple" || rustup target add "$$triple" || { \
	  echo "error: cannot install the Rust target $$triple (rustup could not fetch it)."; \
	  echo "  Fetch it where rustup can reach static.rust-lang.org, or build for this machine's"; \
	  echo "  architecture instead: make sam-build ARCH=$(HOST_ARCH), and deploy with Architecture=$(HOST_ARCH)."; \
	  exit 1; }

## build: the debug build (the CLI, target/debug/exfil-responder) and the release bootstrap for
##        this machine, as sam build makes it
build: bootstrap
	$(CARGO) build --locked

## test: the whole suite: template checks, unit, call sequences (aws-smithy-mocks), moto
##       integration, CLI, and the release bootstrap behind a Lambda Runtime API stand-in
# A debug build lays each future out whole, and the remediation's nest of them runs on libtest's
# 2 MiB test threads with little to spare; 8 MiB gives the suite room (the release build, which
# Lambda runs, needs a fraction: its end-to-end tests run it as built).
test: venv validate bootstrap
	RUST_MIN_STACK=8388608 EXFIL_RESPONDER_BOOTSTRAP=$(BOOTSTRAP) $(CARGO) test --locked -- --show-output

## lint: formatting, clippy with warnings denied, and the source layout (no import circle, parent
##       and child included; no file over 500 lines of non-test code, no function over 80 lines; a
##       deny's IAM calls only in src/aws/iam.rs, behind the gate's Permit: scripts/check_layout.py,
##       which first checks itself on small trees)
lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets --locked -- -D warnings
	$(PYTHON) scripts/check_layout.py --self-test

## validate: sam validate --lint, cfn-lint with the serverless rules, parliament and the
##           project's own template checks (scripts/check_template.py: policies, permissions,
##           event patterns, the dashboard), then samconfig.toml, the docs' parameter table and the
##           Terraform module against the template (scripts/check_deploy.py); first checkov and
##           terraform fmt (make terraform-check)
validate: venv terraform-check
	sam validate --lint --region us-east-1 --template template.yaml
	cfn-lint
	$(BIN)/python scripts/check_template.py --self-test
	$(BIN)/python scripts/check_deploy.py --self-test

## checkov-venv: checkov in a virtualenv of its own (its pins conflict with SAM CLI's: in one
##               venv pip can only resolve a 2022 checkov), pinned by constraints-checkov.txt
CHECKOV_VENV ?= $(VENV)-checkov
checkov-venv: $(CHECKOV_VENV)/.installed
$(CHECKOV_VENV)/.installed: requirements-checkov.txt constraints-checkov.txt
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --disable-pip-version-check --quiet -r requirements-checkov.txt -c constraints-checkov.txt
	touch $@

## terraform-check: checkov over the Terraform module and the three templates (each skipped rule
##                  says why, where it is skipped), and terraform fmt -check where terraform is
##                  installed (terraform validate and plan need the AWS provider: not offline)
terraform-check: checkov-venv
	$(CHECKOV_VENV)/bin/checkov --quiet --compact --skip-download --framework terraform -d terraform
	$(CHECKOV_VENV)/bin/checkov --quiet --compact --skip-download --framework cloudformation \
	  -f template.yaml -f member-role.yaml -f forwarding-rule.yaml
	@if command -v terraform >/dev/null 2>&1; then terraform fmt -check -recursive terraform && echo "terraform fmt: clean"; \
	  else echo "terraform fmt: skipped, no terraform binary on PATH"; fi

## bootstrap: the release bootstrap for this machine, as sam build makes it (for the tests)
bootstrap: venv
	cargo lambda build --release --locked $(call LAMBDA_FLAG,$(HOST_ARCH)) --lambda-dir $(TARGET_DIR)/lambda/host

## package: the deployable bootstrap.zip for ARCH (default arm64), with cargo lambda build
package: venv target
	cargo lambda build --release --locked $(call LAMBDA_FLAG,$(ARCH)) --output-format zip \
	  --lambda-dir $(TARGET_DIR)/lambda/$(ARCH)
	@ls -l $(TARGET_DIR)/lambda/$(ARCH)/exfil-responder/bootstrap.zip

## release: RELEASE_DIR/exfil-responder-<version>/: bootstrap.zip and a packaged template for each
##          architecture, the member role and forwarding templates, and SHA256SUMS (scripts/release.py),
##          in dist/ (RELEASE_DIR)
RELEASE_DIR ?= dist
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
release: venv
	$(MAKE) package ARCH=arm64
	$(MAKE) package ARCH=x86_64
	$(BIN)/python scripts/release.py $(TARGET_DIR)/lambda $(RELEASE_DIR)
	cd $(RELEASE_DIR)/exfil-responder-$(VERSION) && sha256sum -c --quiet SHA256SUMS && \
	  for arch in arm64 x86_64; do sam validate --lint --region us-east-1 --template template-$$arch.yaml; done

## docs: the docs site from docs/ (MkDocs, Material theme), into DOCS_DIR; strict, so a broken
##       link or anchor fails the build
DOCS_DIR ?= $(TARGET_DIR)/docs
docs: venv
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --config-file docs/mkdocs.yml --site-dir $(DOCS_DIR)
	@echo "docs: $(DOCS_DIR)/index.html"

## sam-build: sam build (rust-cargolambda) for ARCH (default arm64), into .aws-sam/build
sam-build: venv target
	sam build --parameter-overrides Architecture=$(ARCH)

## demo: a real run against the emulator: seed an account, respond to findings, show before/after
demo: venv
	$(CARGO) build --locked
	$(BIN)/python scripts/demo.py

## watch: serve the function locally on 127.0.0.1:9000 (cargo lambda watch), hot-reloading
watch: venv
	cargo lambda watch

## invoke: send EVENT to the function served by make watch (cargo lambda invoke)
invoke: venv
	cargo lambda invoke exfil-responder --data-file $(EVENT)

## invoke-local: what sam local invoke -e EVENT does, without Docker: the release bootstrap under
##               AWS's Runtime Interface Emulator (from the pinned aws-sam-cli), invoked with boto3,
##               acting with your current AWS credentials in their account (DRY_RUN=1 to only plan)
invoke-local: venv bootstrap
	$(if $(DRY_RUN),DRY_RUN=true,) $(BIN)/python scripts/invoke_local.py --bootstrap $(BOOTSTRAP) $(EVENT)

## cli: run the CLI on EVENT with your current AWS credentials (DRY_RUN=1 to only plan)
cli:
	$(CARGO) run --locked --quiet -- invoke --event $(EVENT) $(if $(DRY_RUN),--dry-run,)

## bench: the performance figures (docs/src/performance.md): the release bootstrap served events by
##        the Runtime API stand-in against moto, BENCH_RUNS fresh processes per scenario; beside
##        it the Python peer (tests/peer, under awslambdaric), every AWS answer BENCH_LATENCY_MS
##        (30) late; fleets of 1, 11, 51, and 200 under EC2 throttling (BENCH_THROTTLE=50/5) at
##        each of BENCH_THROTTLE_CONCURRENCY; the walk of a 3-hop chain (CHAIN), every answer
##        BENCH_CHAIN_LATENCY_MS (50) late, BENCH_CHAIN_RUNS (3) times; the zipped package for both
##        architectures. CHAIN=off compares containment alone (the peer walks no trail).
##        Prints tables; asserts no timing.
BENCH_RUNS ?= 10
BENCH_FLEET_RUNS ?= 3
bench: venv bootstrap
	$(MAKE) package ARCH=arm64
	$(MAKE) package ARCH=x86_64
	EXFIL_RESPONDER_BOOTSTRAP=$(BOOTSTRAP) BENCH_LAMBDA_DIR=$(TARGET_DIR)/lambda \
	  BENCH_RUNS=$(BENCH_RUNS) BENCH_FLEET_RUNS=$(BENCH_FLEET_RUNS) $(CARGO) test --locked --test bench

## fuzz: fuzz the parser and the planner for FUZZ_SECONDS (needs nightly and cargo-fuzz; not in CI)
FUZZ_SECONDS ?= 60
fuzz:
	mkdir -p fuzz/corpus/parse_and_plan
	cd fuzz && cargo +nightly fuzz run parse_and_plan corpus/parse_and_plan ../events ../tests/corpus \
	  -- -max_total_time=$(FUZZ_SECONDS) -max_len=65536

clean:
	$(CARGO) clean
	rm -rf .venv .venv-checkov .aws-sam dist
