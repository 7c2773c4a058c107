#!/usr/bin/env bash
# ansible-test sanity, offline: ansible-test must run from inside
# ansible_collections/<namespace>/<name>, so copy the collection's files (those git tracks
# or would track) there, give ansible-test its get-pip bootstrap from the cache, and run.
# Usage: tests/scripts/sanity.sh [ansible-test sanity options]
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
# Outside the repository: inside it, ansible-test would list files with git and see none.
build=${LABOPS_SANITY_DIR:-${TMPDIR:-/tmp}/labops-sanity-$(id -u)}
dest="$build/ansible_collections/labops/services"
python=${LABOPS_SANITY_PYTHON:-3.11}

pip_version=$(python3 - <<'PY'
import re, sys
from importlib.util import find_spec
spec = find_spec('ansible_test')
src = open(spec.submodule_search_locations[0] + '/_internal/python_requirements.py').read()
print(re.search(r"pip='([0-9.]+)'", src).group(1))
PY
)
cache="$HOME/.ansible/test/cache/get_pip_${pip_version//./_}.py"
mkdir -p "$(dirname "$cache")"
cmp -s "$top/tests/scripts/get_pip_offline.py" "$cache" 2>/dev/null || cp "$top/tests/scripts/get_pip_offline.py" "$cache"

rm -rf "$dest"
mkdir -p "$dest"
(cd "$top" && git ls-files -z --cached --others --exclude-standard \
  | grep -zv '^collections/' \
  | while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done \
  | tar --null -T - -c) | tar -C "$dest" -x
cd "$dest"
ansible-test sanity --local --python "$python" --color no "$@"
