"""Secret masking in every log line and message."""

import logging

from common.logs import MaskingFilter, SecretMasker, secret_values


def test_secret_values_from_known_and_suspicious_names():
    env = {
        "AWS_SECRET_ACCESS_KEY": "s3cr3t-key",
        "MY_API_TOKEN": "tok-123456",
        "DB_PASSWORD": "hunter22",
        "AWS_ACCESS_KEY_ID": "public-id",
        "MLFLOW_TRACKING_URI": "http://user:pa55word@host:5000",
    }
    values = secret_values(env)
    assert {"s3cr3t-key", "tok-123456", "hunter22", "pa55word"} <= set(values)
    assert "public-id" not in values


def test_masker_replaces_secrets_and_url_passwords():
    masker = SecretMasker(["s3cr3t-key"])
    text = masker.mask("key=s3cr3t-key url=https://bob:other@x.io/p")
    assert "s3cr3t-key" not in text and "other" not in text
    assert text == "key=**** url=https://bob:****@x.io/p"


def test_filter_masks_arguments_and_tracebacks():
    masker = SecretMasker(["s3cr3t-key"])
    record = logging.LogRecord("t", logging.ERROR, __file__, 1, "value %s", ("s3cr3t-key",), None)
    try:
        raise ValueError("boom s3cr3t-key")
    except ValueError:
        import sys

        record.exc_info = sys.exc_info()
    MaskingFilter(masker).filter(record)
    assert record.getMessage() == "value ****"
    assert "s3cr3t-key" not in record.exc_text
