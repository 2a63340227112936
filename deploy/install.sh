#!/bin/sh
# Install Regelmotor from the wheels of build-wheels.sh into a new virtual environment, offline: nothing comes
# from an index and nothing is compiled (binary wheels only). The image's build stage runs it for /opt/regelmotor;
# tests/test_deploy_image.py runs it for a temporary one and serves a decision from it.
#   deploy/install.sh WHEEL_DIR VENV_DIR [PYTHON]
set -eu
wheel_dir=$1
venv_dir=$2
python=${3:-python3}
"$python" -m venv "$venv_dir"
"$venv_dir/bin/python" -m pip install --quiet --no-index --only-binary=:all: --find-links "$wheel_dir" regelmotor
