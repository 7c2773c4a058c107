"""labops kit mongo: start NX-27017 (the MongoDB wire-protocol server of PyPI's nx-27017)
in the foreground, with its per-command INFO log turned down.

NX-27017 logs every command it receives, documents included, at INFO level. Here its
logger starts at NX27017_LOG_LEVEL (default WARNING); set it to INFO or DEBUG to see
the commands. The arguments are NX-27017's own (see `--help`).
"""
import logging
import os
import sys

from nx_27017.nx_27017 import main

logging.getLogger("nx_27017").setLevel(os.environ.get("NX27017_LOG_LEVEL", "WARNING").upper())
sys.exit(main())
