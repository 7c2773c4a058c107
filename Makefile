# labops.services — the two commands the README promises, and their parts.
#   make lab    deploy site.yml to the disposable lab server (a container on this machine)
#   make test   everything CI runs, from nothing
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

VENV    ?= .venv
PY      := $(VENV)/bin/python
BIN     := $(abspath $(VENV))/bin
BUILD   := $(abspath .build)
export ANSIBLE_HOME := $(BUILD)/ansible-home
export ANSIBLE_CONFIG := $(abspath ansible.cfg)
export PATH := $(BIN):$(PATH)

.PHONY: help setup engine testhost-image unit sanity lint molecule test lab lab-down build bench changelog clean

help:
	@echo "make lab        deploy site.yml -i inventories/lab into the disposable lab server"
	@echo "make lab-down   remove the lab server container and its volumes"
	@echo "make test       setup + Docker engine + test images + unit, sanity, lint, molecule"
	@echo "make setup      create $(VENV) with the pinned tooling (idempotent)"
	@echo "make bench      run the benchmarks in tests/benchmarks/"

$(VENV)/.installed: requirements.txt
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	@touch $@

setup: $(VENV)/.installed

unit: setup
	$(BIN)/pytest tests/unit

