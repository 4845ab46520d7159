#!/usr/bin/env bash
# One command for each job, on a fresh machine:
#   ./dev.sh course   set everything up and open the course (JupyterLab on notebooks/)
#   ./dev.sh test     set everything up and run the whole test suite (pytest + nbval on the notebooks)
#   ./dev.sh setup    only create the virtual environment (.venv, or $NSTLAB_VENV) and install nstlab
set -euo pipefail
cd "$(dirname "$0")"
venv="${NSTLAB_VENV:-.venv}"
python="${PYTHON:-python3}"

setup() {
    if [ ! -x "$venv/bin/python" ]; then
        echo "Creating the virtual environment $venv ..."
        "$python" -m venv "$venv"
    fi
    # Reinstall only when the dependencies changed (the stamp is the hash of pyproject.toml).
    stamp="$venv/.nstlab-installed"
    want="$(sha256sum pyproject.toml | cut -d' ' -f1)"
    if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
        echo "Installing nstlab and its dependencies into $venv (the first time takes a few minutes) ..."
        "$venv/bin/python" -m pip install --upgrade pip >/dev/null
        "$venv/bin/python" -m pip install -e ".[test]"
        echo "$want" > "$stamp"
    fi
}

case "${1:-}" in
    setup)
        setup
        ;;
    course)
        setup
        exec "$venv/bin/jupyter" lab notebooks/
        ;;
    test)
        setup
        shift
        # Small sizes and few steps, untrained VGG19 (no download), no GUI backend.
        export NSTLAB_SMOKE=1 NSTLAB_WEIGHTS="${NSTLAB_WEIGHTS:-random}" MPLBACKEND=Agg
        exec "$venv/bin/python" -m pytest tests notebooks --nbval-lax \
            --nbval-sanitize-with notebooks/sanitize.cfg -p no:cacheprovider "$@"
        ;;
    *)
        echo "usage: ./dev.sh course | test [pytest options] | setup" >&2
        exit 2
        ;;
esac
