"""The /api/reconcile body model: what it accepts, and the error naming the field for what it refuses."""

from __future__ import annotations

import json

import pytest

from remediation.errors import InputError
from remediation.http_body import parse_reconcile_body


def body(value: object) -> bytes:
    return json.dumps(value).encode()


def test_an_empty_body_is_the_configured_subscription_for_real() -> None:
    request = parse_reconcile_body(b"  \n")
    assert (request.scope, request.dry_run, request.accept_detached) == (None, False, [])


def test_every_field_is_read_by_its_json_name() -> None:
    request = parse_reconcile_body(body({"scope": "/subscriptions/x", "dryRun": True, "acceptDetached": ["/s/1"]}))
    assert (request.scope, request.dry_run, request.accept_detached) == ("/subscriptions/x", True, ["/s/1"])


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"scop": "x", "dry": 1}, "request body: unknown field(s) dry, scop (valid: scope, dryRun, acceptDetached)"),
        ({"dry_run": True}, "request body: unknown field(s) dry_run"),  # the Python name is no alias
        ({"scope": 5}, "scope: must be a string"),
        ({"dryRun": "yes"}, "dryRun: must be true or false"),  # strict: no "yes" -> True coercion
        ({"dryRun": 1}, "dryRun: must be true or false"),
        ({"acceptDetached": "/s/1"}, "acceptDetached: must be a list of subnet ids"),
        ({"acceptDetached": [1]}, "acceptDetached: must be a list of subnet ids"),
        (["scope"], "request body: body must be a JSON object"),
    ],
)
def test_bad_bodies_name_the_field(value: object, message: str) -> None:
    with pytest.raises(InputError) as caught:
        parse_reconcile_body(body(value))
    assert str(caught.value).startswith(message)


def test_not_json_and_too_deep_are_input_errors() -> None:
    with pytest.raises(InputError, match="request body: body is not JSON"):
        parse_reconcile_body(b"{nope")
    with pytest.raises(InputError, match="request body: body is nested too deeply"):
        parse_reconcile_body(b"[" * 100_000 + b"]" * 100_000)
