#!/usr/bin/env bash
# labops kit jupyter: upstream keeps this name for older compose files; it is start-notebook.py.
exec start-notebook.py "$@"
