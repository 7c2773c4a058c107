"""Build step: make two alyx-local 3.1.8 migrations independent of upstream's fixed names.

alyx-local's compose always connects as role `postgres` to database `alyx`, and two
migrations spell those names out:
  misc/00011_create_natsort_collation  ALTER COLLATION natsort_collation OWNER TO postgres
  misc/00012_create_role_readaccess    GRANT CONNECT ON DATABASE alyx TO readaccess
With IBL's names (PGUSER=ibl_dev, PGDATABASE=alyxdb) `migrate` stops there ("role
"postgres" does not exist"). They become OWNER TO CURRENT_USER and a GRANT on
current_database(): the same statements on upstream's own names, any names elsewhere.
Migration names and dependencies do not change, so databases migrated by upstream's
image and by this one share one history. Fails the build when the text is not found
(a new alyx-local release must be looked at again).

Usage: python patch-alyx-local.py SITE_PACKAGES/alyx
"""

import pathlib
import sys

PATCHES = {
    "misc/migrations/00011_create_natsort_collation.py": [
        (
            "ALTER COLLATION natsort_collation OWNER TO postgres;",
            "ALTER COLLATION natsort_collation OWNER TO CURRENT_USER;",
        ),
    ],
    "misc/migrations/00012_create_role_readaccess.py": [
        (
            "GRANT CONNECT ON DATABASE alyx TO readaccess;",
            "EXECUTE format('GRANT CONNECT ON DATABASE %I TO readaccess', current_database());",
        ),
    ],
}


def main(root):
    for rel, replacements in PATCHES.items():
        path = pathlib.Path(root, rel)
        text = path.read_text(encoding="utf-8")
        for old, new in replacements:
            if text.count(old) != 1:
                sys.exit(f"patch-alyx-local: expected exactly one {old!r} in {path}")
            text = text.replace(old, new)
        path.write_text(text, encoding="utf-8")
        print(f"patch-alyx-local: patched {rel}")


if __name__ == "__main__":
    main(sys.argv[1])
