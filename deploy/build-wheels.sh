#!/bin/sh
# Build the wheels of Regelmotor's three distributions and of every dependency into WHEEL_DIR, so that
# install.sh needs neither the source tree, a compiler nor the network. durable_rules comes from PyPI as
# source only: this step compiles it, so it needs gcc (the image's build stage; tests/test_deploy_image.py).
#   deploy/build-wheels.sh SOURCE_DIR WHEEL_DIR [PYTHON]
#   SOURCE_DIR  a checkout (pip writes build/ and *.egg-info into it: give the image's or a test's copy)
#   PYTHON      the interpreter that builds (default python3); the wheels are for its version
set -eu
source_dir=$1
wheel_dir=$2
python=${3:-python3}
# The three projects together, so that regelmotor's requirement regelmotor-api is met by protos/python, not an index.
"$python" -m pip wheel --quiet --wheel-dir "$wheel_dir" \
    "$source_dir/protos/python" "$source_dir/clients/python" "$source_dir"
