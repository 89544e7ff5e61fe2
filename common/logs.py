"""Logging for steps: one format on stderr, milestones at INFO, and secrets masked.

Masking is a ``logging.Filter`` on the handler, so every record is masked
whatever module logged it, in quiet and verbose mode alike. Secret values are
collected from the environment once, at configuration time: the values of the
variables in ``SECRET_VARIABLES`` and of any variable whose name says it holds a
password, token or secret, plus credentials embedded in URLs.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable, Mapping

from common.names import SECRET_NAME_WORDS, SECRET_VARIABLES

MASK = "****"
_URL_CREDENTIALS = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<user>[^:/@\s]+):(?P<password>[^@/\s]+)@", re.I)
# Libraries that talk too much at INFO; they still speak in verbose mode.
_NOISY = ("botocore", "boto3", "urllib3", "s3transfer", "docker", "kubernetes", "alembic", "git")
_FORMAT = "%(asctime)s %(levelname)-5s %(name)s: %(message)s"
_QUIET_FORMAT = "%(asctime)s %(message)s"


def secret_values(environ: Mapping[str, str]) -> list[str]:
    """The values in ``environ`` that must never be shown, longest first."""
    values = set()
    for name, value in environ.items():
        upper = name.upper()
        is_secret = name in SECRET_VARIABLES or any(word in upper for word in SECRET_NAME_WORDS)
        if is_secret and len(value) >= 4:
            values.add(value)
        for match in _URL_CREDENTIALS.finditer(value):
            values.add(match.group("password"))
    return sorted(values, key=len, reverse=True)


class SecretMasker:
    """Replaces secret values, and passwords inside URLs, with ``****``."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self.secrets = [s for s in secrets if s]

    def add(self, secret: str) -> None:
        if secret and secret not in self.secrets:
            self.secrets.append(secret)
            self.secrets.sort(key=len, reverse=True)

    def mask(self, text: str) -> str:
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        return _URL_CREDENTIALS.sub(lambda m: f"{m['scheme']}{m['user']}:{MASK}@", text)


class MaskingFilter(logging.Filter):
    """Masks each record's final text, arguments and traceback included."""

    def __init__(self, masker: SecretMasker) -> None:
        super().__init__()
        self.masker = masker

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        record.msg = self.masker.mask(message)
        record.args = None
        if record.exc_text:
            record.exc_text = self.masker.mask(record.exc_text)
        return True


_masker = SecretMasker()


def masker() -> SecretMasker:
    """The process-wide masker, for text that goes to the user other than by logging."""
    return _masker


def configure_logging(verbose: bool, environ: Mapping[str, str]) -> SecretMasker:
    """Log to stderr through the masking filter; verbose shows DEBUG and library logs."""
    for secret in secret_values(environ):
        _masker.add(secret)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(_FORMAT if verbose else _QUIET_FORMAT, "%H:%M:%S"))
    handler.addFilter(MaskingFilter(_masker))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    for name in _NOISY:
        logging.getLogger(name).setLevel(logging.DEBUG if verbose else logging.WARNING)
    return _masker
