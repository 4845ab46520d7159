#!/usr/bin/env bash
# One command for each job, on a fresh machine:
#   ./dev.sh course   set everything up and open the course (JupyterLab on notebooks/); options go to JupyterLab
#   ./dev.sh test     set everything up and run the whole test suite (pytest + nbval on the notebooks);
#                     with paths (./dev.sh test tests/test_losses.py -x) only those
#   ./dev.sh test-capped   the unit tests again with oneDNN and ATen capped to AVX2, computing as an older CPU
#                     would: the tests that compare computations which round differently must pass there too
#   ./dev.sh setup    only create the virtual environment (.venv, or $NSTLAB_VENV) and install nstlab
set -euo pipefail
cd "$(dirname "$0")"
venv="${NSTLAB_VENV:-.venv}"
python="${PYTHON:-python3}"

# Installing PyPI's torch (the CUDA build) into an empty environment peaked at 8.5 GB of disk on the build
# machine (5.9 GB stay installed; pip unpacks in $TMPDIR). Say so before pip runs out of space half-way.
need_gb=9
check_disk_space() {
    if "$venv/bin/python" -c "import importlib.util, sys; sys.exit(importlib.util.find_spec('torch') is None)"; then
        return  # torch is already there (for example the CPU-only install): the rest is small
    fi
    local dir free_gb
    for dir in "$venv" "${TMPDIR:-/tmp}"; do
        free_gb=$(df -Pk "$dir" | awk 'NR == 2 {print int($4 / 1048576)}')
        if [ "$free_gb" -lt "$need_gb" ]; then
            echo "error: installing PyTorch needs about $need_gb GB of free disk; $dir has $free_gb GB." >&2
            echo "Free some space, or install the CPU-only PyTorch first (README: A smaller install for CPU-only machines)." >&2
            exit 1
        fi
    done
}

setup() {
    if [ ! -x "$venv/bin/python" ]; then
        echo "Creating the virtual environment $venv ..."
        "$python" -m venv "$venv"
    fi
    # Reinstall only when the dependencies changed (the stamp is the hash of pyproject.toml).
    stamp="$venv/.nstlab-installed"
    want="$(sha256sum pyproject.toml | cut -d' ' -f1)"
    if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
        check_disk_space
        echo "Installing nstlab and its dependencies into $venv (the first time takes a few minutes) ..."
        "$venv/bin/python" -m pip install --upgrade pip >/dev/null
        "$venv/bin/python" -m pip install -e ".[lab,test]"
        echo "$want" > "$stamp"
    fi
}

case "${1:-}" in
    setup)
        setup
        ;;
    course)
        setup
        shift
        # The widgets' upload buttons send a file to the kernel as one websocket message; Tornado's default limit,
        # 10 MiB, drops a larger phone photo before the kernel sees it. 512 MiB is also the server's buffer size.
        # Further options go to JupyterLab (on a server or in a container: --no-browser --ip=0.0.0.0 --allow-root).
        exec "$venv/bin/jupyter" lab --ServerApp.tornado_settings="{'websocket_max_message_size': 536870912}" \
            "$@" notebooks/
        ;;
    test | test-capped)
        setup
        job="$1"
        shift
        # Small sizes and few steps, untrained VGG19 (no download), no GUI backend.
        export NSTLAB_SMOKE=1 NSTLAB_WEIGHTS="${NSTLAB_WEIGHTS:-random}" MPLBACKEND=Agg
        paths=(tests notebooks)
        if [ "$job" = test-capped ]; then
            # oneDNN without AVX-512 (ONEDNN_VERBOSE=1 then names brg_conv_fwd:avx2, jit_1x1:avx2; torch hands it no bf16
            # work) and ATen's vectorised loops at AVX2: other kernels, other rounding. README: Tests.
            export ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2
            paths=(tests)
        fi
        for arg in "$@"; do
            if [ -e "${arg%%::*}" ]; then paths=(); break; fi  # paths given: run only those
        done
        exec "$venv/bin/python" -m pytest "${paths[@]}" --nbval-lax \
            --nbval-sanitize-with notebooks/sanitize.cfg -p no:cacheprovider "$@"
        ;;
    *)
        echo "usage: ./dev.sh course [JupyterLab options] | test [paths] [pytest options] | test-capped [...] | setup" >&2
        exit 2
        ;;
esac
