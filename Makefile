# labops.services — the two commands the README promises, and their parts.
#   make lab    deploy site.yml to the disposable lab server (a container on this machine)
#   make test   everything CI runs, from nothing
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

VENV      ?= .venv
PY        := $(VENV)/bin/python
BIN       := $(abspath $(VENV))/bin
BUILD     := $(abspath .build)
INVENTORY ?= inventories/lab
# Molecule scenarios run by `make test`: all of molecule/*/ but shared, the longest first
# (they run LABOPS_JOBS at a time), then any scenario not yet in that list.
ALL_SCENARIOS  := $(filter-out shared,$(notdir $(patsubst %/,%,$(wildcard molecule/*/))))
LONGEST_FIRST  := site spyglass_export alyx alyx_local datalab vidjil tls base backup compose_stack docker
SCENARIOS      ?= $(filter $(ALL_SCENARIOS),$(LONGEST_FIRST)) $(filter-out $(LONGEST_FIRST),$(ALL_SCENARIOS))
# Scenarios and kit tests run side by side: most of their time is spent waiting on
# containers, so two at a time on 2 cores cuts the wall time (see docs/testing.md).
export LABOPS_JOBS  ?= 2

export ANSIBLE_HOME         := $(BUILD)/ansible-home
export ANSIBLE_CONFIG       := $(abspath ansible.cfg)
export MOLECULE_GLOB        := molecule/*/molecule.yml
export PATH                 := $(BIN):$(PATH)
export LABOPS_DOCKERD_LOG   := $(BUILD)/dockerd.log
export LABOPS_LOG_DIR       := $(BUILD)/logs

.PHONY: help setup engine images test-debs bench-debs kit-test unit sanity lint checks molecule test lab lab-down build bench clean

help:
	@echo "make lab        deploy site.yml -i $(INVENTORY) into the disposable lab server"
	@echo "make lab-down   remove the lab server container and its Docker volume"
	@echo "make test       setup + Docker engine + test images + unit, sanity, lint, molecule"
	@echo "make setup      create $(VENV) with the pinned tooling (idempotent)"
	@echo "make unit | sanity | lint | molecule [SCENARIOS='docker']   one part of make test"
	@echo "make build      ansible-galaxy collection build"
	@echo "make bench      run the benchmarks in tests/benchmarks/ (slow: GB-sized files)"

# --- setup: the venv with the pinned tooling --------------------------------------------
$(VENV)/.installed: requirements.txt
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	@touch $@

setup: $(VENV)/.installed

# --- a Docker engine and the images tests need -----------------------------------------
engine:
	@mkdir -p $(BUILD)
	@bash tests/scripts/ensure-engine.sh

# Both scripts build only when their cached image (tagged by content) is missing.
images: engine
	@echo "LABOPS_TESTHOST_IMAGE=$$(bash tests/images/build-testhost.sh)" > $(BUILD)/images.env.tmp
	@echo "LABOPS_TESTHOST_DOCKER_IMAGE=$$(bash tests/images/build-testhost-docker.sh)" >> $(BUILD)/images.env.tmp
	@echo "LABOPS_PROBE_IMAGE=$$(bash tests/images/build-probe.sh)" >> $(BUILD)/images.env.tmp
	@bash tests/images/kit/build.sh
	@mv $(BUILD)/images.env.tmp $(BUILD)/images.env
	@cat $(BUILD)/images.env

# --- the parts of make test ------------------------------------------------------------
# Debian packages the tests and benchmarks use as real peers, installed when missing:
# MariaDB for mysql_export_sanitize, PostgreSQL for the alyx dump loader, rsync and zstd for
# the backup runner, debootstrap for the test images (installed here, so no apt runs while
# images build); nginx, curl and GNU time for the benchmarks (side-by-side tools, peak RSS).
TEST_DEBS  := mariadb-server mariadb-client postgresql rsync zstd curl debootstrap
BENCH_DEBS := $(TEST_DEBS) nginx-light time
define apt_ensure
	@missing=""; for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then echo "installing:$$missing"; apt-get update -qq; \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; fi
endef
test-debs:
	$(call apt_ensure,$(TEST_DEBS))
bench-debs:
	$(call apt_ensure,$(BENCH_DEBS))

unit: setup test-debs
	LABOPS_REQUIRE_MARIADB=1 LABOPS_REQUIRE_POSTGRES=1 $(BIN)/pytest -p no:cacheprovider tests/unit

sanity: setup
	bash tests/scripts/sanity.sh

lint: setup
	$(BIN)/yamllint --strict .
	$(BIN)/ansible-lint --profile production
	$(BIN)/antsibull-changelog lint
	$(BIN)/ansible-playbook --syntax-check site.yml -i $(INVENTORY)

# The stand-in images must honour their upstream contracts before any role relies on them.
kit-test: images
	@bash tests/scripts/parallel.sh kit-test -- bash ::: $(wildcard tests/images/kit/test_*_image.sh)

molecule: setup images
	@set -a; . $(BUILD)/images.env; set +a; \
	bash tests/scripts/parallel.sh molecule -- bash tests/scripts/molecule-scenario.sh ::: $(SCENARIOS)

# The checks that need no test image run while the images build (apt and pip downloads
# leave the CPU idle); each part's output is printed whole when it ends.
checks: unit sanity lint

test: setup test-debs engine
	@$(MAKE) --no-print-directory -j2 --output-sync=target images checks
	@$(MAKE) --no-print-directory kit-test molecule
	@echo "make test: all passed"

# --- the main job ------------------------------------------------------------------------
lab: setup engine images
	@set -a; . $(BUILD)/images.env; set +a; \
	$(BIN)/ansible-playbook playbooks/sandbox.yml -i $(INVENTORY) && \
	$(BIN)/ansible-playbook site.yml -i $(INVENTORY)

lab-down: setup
	$(BIN)/ansible-playbook playbooks/sandbox.yml -i $(INVENTORY) -e sandbox_state=absent

# --- other ---------------------------------------------------------------------------------
build: setup
	@mkdir -p $(BUILD)/dist
	$(BIN)/ansible-galaxy collection build --force --output-path $(BUILD)/dist .

bench: setup bench-debs
	@for b in tests/benchmarks/bench_*.py; do echo "== $$b"; $(PY) $$b; done

clean:
	rm -rf $(BUILD) tests/output
