#!/usr/bin/env bash
# The suite's render, retry, golden-page and hostile-page tests at the lowest declared versions: a separate venv
# (.venv-min, or $MIN_VENV) where every runtime dependency with a ">=" floor in pyproject.toml is
# pinned to exactly that floor; everything else resolves as pip chooses. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${MIN_VENV:-.venv-min}"
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/python" - > "$VENV/floors.txt" <<'PY'
import re, tomllib
for requirement in tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]:
    match = re.match(r"\s*([A-Za-z0-9_.-]+)\s*>=\s*([^,;\s]+)", requirement)
    if match:
        print(f"{match[1]}=={match[2]}")
PY
echo "floors: $(tr '\n' ' ' < "$VENV/floors.txt")"
"$VENV/bin/pip" install -q --disable-pip-version-check -c "$VENV/floors.txt" -e . pytest 2>&1 \
  | { grep -v -i warning || true; }
"$VENV/bin/python" -m pip list --disable-pip-version-check 2>/dev/null \
  | grep -i -E "^(scrapy|scrapy-playwright|playwright|twisted|markdownify|beautifulsoup4|lxml|cssselect|itemadapter|datasketch) " || true
exec "$VENV/bin/python" -m pytest -q -p no:cacheprovider \
  tests/test_render.py tests/test_render_replica.py tests/test_retry.py tests/test_golden.py tests/test_hostile.py "$@"
