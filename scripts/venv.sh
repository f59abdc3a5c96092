#!/usr/bin/env bash
# Create a virtualenv with a Python >= 3.12 (Django 6 needs it) and install
# requirements.txt. VENV picks the folder (.venv); DJANGO swaps the Django pin
# (e.g. DJANGO="Django~=5.2.0" for the LTS run).
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${VENV:-.venv}
find_python() {
  local candidate
  for candidate in python3.13 python3.12 python3 \
      "$HOME"/.pyenv/versions/3.1[2-9]*/bin/python3 /usr/local/bin/python3.1[2-9] /usr/bin/python3.1[2-9]; do
    if command -v "$candidate" >/dev/null 2>&1 &&
       "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null; then
      command -v "$candidate"; return 0
    fi
  done
  return 1
}
if [ ! -x "$venv/bin/python" ]; then
  python=$(find_python) || { echo "livefeed needs Python >= 3.12 (Django 6); none found." >&2; exit 1; }
  echo "Creating $venv with $python"
  "$python" -m venv "$venv"
fi
requirements=requirements.txt
if [ -n "${DJANGO:-}" ]; then
  requirements="$venv/requirements.txt"
  grep -vi '^django==' requirements.txt > "$requirements"
  echo "$DJANGO" >> "$requirements"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$requirements" 2>&1 |
  grep -v "^WARNING: Location" || true
touch "$venv/.installed"
