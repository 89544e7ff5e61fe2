#!/bin/sh
# Install a codeset's environment into a virtualenv: with uv when it can, else with pip.
#
#   install.sh PYTHON FILES [UV]
#
# PYTHON is the virtualenv's interpreter; FILES the folder the builder wrote
# (requirements.txt, constraints.txt, build-requirements.txt, pip-ca.crt, empty
# when there is no CA, and installer: auto, uv or pip); UV a uv binary, if any.
# The image template and the venv backend both run this script, so an image and
# a virtualenv are installed alike, and the first line of output says which
# installer ran and, for pip, why.
#
# uv is made to behave as pip does: every index is searched for the best version
# (--index-strategy unsafe-best-match; pip has no "first index wins"), pip's
# index variables are handed over (uv does not read pip.conf), the PyPI CA
# reaches it as SSL_CERT_FILE (pip's PIP_CERT), and it never downloads a Python.
# Neither installer compiles bytecode: one step does after either has installed
# (FUSEML_BYTECODE=all, the default; none leaves it out), on all cores, every
# installed module but the test suites, so both installers leave the same files.
# With installer=auto, a uv that is missing, does not run here (another
# architecture, a musl base) or fails leaves the work to pip, whose error
# message then is the one reported; except when uv found the requirements
# unsatisfiable, which pip cannot change.
set -eu
python=$1
files=$2
uv=${3:-}
mode=$(cat "$files/installer" 2>/dev/null || echo auto)
ca=""
if [ -s "$files/pip-ca.crt" ]; then ca=$files/pip-ca.crt; fi

# The wheels ensurepip installs (pip; setuptools too before Python 3.12), where CPython bundles
# them; nothing where a distribution points ensurepip elsewhere (WHEEL_PKG_DIR) or has none.
BUNDLED='import glob, os, sysconfig
try:
    import ensurepip
except ImportError:
    raise SystemExit
if not sysconfig.get_config_var("WHEEL_PKG_DIR"):
    print(*sorted(glob.glob(os.path.join(os.path.dirname(ensurepip.__file__), "_bundled", "*.whl"))), sep="\n")'

ensure_pip() {
    # A venv made with --without-pip (the venv backend's) gets what python -m venv would have put
    # there: by uv from ensurepip's own wheels when uv installs (0.3 s), else by ensurepip (2-3 s,
    # it runs pip to install pip).
    if [ "$1" = uv ]; then
        "$python" -c "import pip" 2>/dev/null && return 0
        wheels=$("$python" -c "$BUNDLED") || wheels=""
        if [ -n "$wheels" ]; then
            old_ifs=$IFS
            IFS='
'
            # shellcheck disable=SC2086 # one wheel path per line
            set -- $wheels
            IFS=$old_ifs
            uv_install "$@"
            return
        fi
    else
        # Before pip installs, pip must run: a pip that a failed uv left half-copied does not.
        "$python" -m pip --version >/dev/null 2>&1 && return 0
    fi
    if ! out=$("$python" -m ensurepip --default-pip 2>&1); then
        # Its reason, not its traceback: the last line ("OSError: [Errno 28] No space left on device").
        echo "error: ensurepip could not put pip into the virtualenv: $(echo "$out" | tail -n 1)"
        return 1
    fi
    echo "$out"
}

with_pip() {
    if [ -n "$ca" ]; then export PIP_CERT="$ca"; fi
    ensure_pip pip
    if [ -s "$files/build-requirements.txt" ]; then
        "$python" -m pip install --no-compile --upgrade -r "$files/build-requirements.txt"
    fi
    "$python" -m pip install --no-compile -r "$files/requirements.txt" -c "$files/constraints.txt"
}

with_uv() {
    if [ -n "$ca" ]; then export SSL_CERT_FILE="$ca"; fi
    if [ -n "${PIP_INDEX_URL:-}" ]; then export UV_INDEX_URL="$PIP_INDEX_URL"; fi
    if [ -n "${PIP_EXTRA_INDEX_URL:-}" ]; then export UV_EXTRA_INDEX_URL="$PIP_EXTRA_INDEX_URL"; fi
    if [ -n "${PIP_FIND_LINKS:-}" ]; then export UV_FIND_LINKS="$PIP_FIND_LINKS"; fi
    if [ -n "${PIP_TRUSTED_HOST:-}" ]; then export UV_INSECURE_HOST="$PIP_TRUSTED_HOST"; fi
    export UV_INDEX_STRATEGY=unsafe-best-match UV_PYTHON_DOWNLOADS=never UV_NO_PROGRESS=1 UV_COMPILE_BYTECODE=0
    ensure_pip uv || return $?
    if [ -s "$files/build-requirements.txt" ]; then
        uv_install --upgrade -r "$files/build-requirements.txt" || return $?
    fi
    if [ -s "$files/constraints.txt" ]; then set -- -c "$files/constraints.txt"; else set --; fi
    uv_install -r "$files/requirements.txt" "$@"
}

uv_install() {
    # uv's output is shown as it comes and kept, so that a failure can be told apart (see below).
    { "$uv" pip install --python "$python" "$@" 2>&1; echo $? > "$files/.uv-exit"; } | tee -a "$files/.uv-log"
    return "$(cat "$files/.uv-exit")"
}

compile_bytecode() {
    # What pip would compile file by file on one core (13 s of the wine trainer's 35 s), in one pass on
    # all cores, test suites left out: no step imports them (images delete them), yet they are 2,400 of
    # the wine trainer's 8,400 modules. Where PYTHONDONTWRITEBYTECODE is set, as in our images and on
    # many CI machines, an uncompiled venv would compile pandas or MLflow again in every process.
    # Like pip, a module that does not compile is left to fail when imported; where no worker
    # processes can be started, the compile runs in this one.
    [ "${FUSEML_BYTECODE:-all}" = all ] || return 0
    echo "fuseml-installer: compiling bytecode, test suites left out"
    site=$("$python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
    "$python" -m compileall -qq -j 0 -x '/tests?/' "$site" >/dev/null 2>&1 ||
        "$python" -m compileall -qq -x '/tests?/' "$site" >/dev/null 2>&1 || true
}

finish() {
    # The bytecode, then the installer's CPU time (user, system) for the log: what the bench compares.
    compile_bytecode
    times > "$files/.times"
    echo "fuseml-installer: $1 done, cpu $(tail -n 1 "$files/.times")"
}

if [ "$mode" = pip ]; then
    echo "fuseml-installer: pip (input installer=pip)"
    with_pip
    finish pip
    exit 0
fi
why=""
if [ -z "$uv" ] || [ ! -x "$uv" ]; then
    why="no uv in the builder's environment"
elif ! version=$("$uv" --version 2>&1); then
    why="uv does not run here: $(echo "$version" | head -n 1)"
fi
if [ -z "$why" ]; then
    echo "fuseml-installer: $version"
    code=0
    (with_uv) || code=$?
    if [ "$code" -eq 0 ]; then
        finish uv
        exit 0
    fi
    why="uv failed (exit $code)"
    # The requirements contradict each other: pip cannot do better, only slower (it may build
    # old sdists for minutes before saying the same). uv's explanation above is the answer.
    if grep -q "No solution found when resolving" "$files/.uv-log" 2>/dev/null; then
        explanation=$(sed -n '/No solution found when resolving/,$p' "$files/.uv-log" | tr '\n' ' ' | tr -s ' ' | sed 's/^ //; s/ $//')
        echo "error: the requirements cannot all be met, so pip is not tried: $explanation" >&2
        exit 1
    fi
fi
if [ "$mode" = uv ]; then
    echo "error: input installer=uv, but $why; set installer to auto or pip" >&2
    exit 1
fi
echo "fuseml-installer: pip ($why)"
with_pip
finish pip
