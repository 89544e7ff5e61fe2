#!/bin/sh
# Install this project with some of its extras into a virtualenv (what `make venv` runs).
#
#   tools/venv.sh VENV EXTRAS
#
# It goes through the builder's own installer script, common/install.sh: with uv
# (seconds from its cache) when uv installs and runs here, else with pip, saying
# why; the same fallback and the same handling of pip's settings as a built
# environment gets. uv does not read pip.conf, so pip's CA (PIP_CERT, or
# pip.conf's cert) is handed to it; an index set only in pip.conf is not, and a
# uv that cannot reach its packages leaves the work to pip.
#
# Bytecode is compiled at install (install.sh, on all cores, test suites left out):
# where PYTHONDONTWRITEBYTECODE is set (many CI machines, our images), an
# uncompiled venv compiles pandas, MLflow and KServe again in every process (a
# serving start took 2.2 s instead of 0.7 s).
set -eu
export FUSEML_BYTECODE=all
venv=$1
extras=$2
root=$(cd "$(dirname "$0")/.." && pwd)
files=$venv/.fuseml-install
rm -rf "$files"
mkdir -p "$files"
echo "-e $root[$extras]" > "$files/requirements.txt"
: > "$files/constraints.txt"
echo auto > "$files/installer"
cert=${PIP_CERT:-$("$venv/bin/pip" config get global.cert 2>/dev/null || true)}
if [ -n "$cert" ] && [ -s "$cert" ]; then ln -s "$cert" "$files/pip-ca.crt"; fi
uv_pin=$(grep -o '"uv==[^"]*"' "$root/pyproject.toml" | tr -d '"')
"$venv/bin/pip" install -q "$uv_pin" || echo "tools/venv.sh: $uv_pin did not install; pip installs the project"
exec sh "$root/common/install.sh" "$venv/bin/python" "$files" "$venv/bin/uv"
