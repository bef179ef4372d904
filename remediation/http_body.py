"""The ``POST /api/reconcile`` body, validated by a pydantic model (unknown fields refused).

``{"scope": "<subscription, resource group or NSG id>", "dryRun": bool, "acceptDetached": [subnet ids]}``,
every field optional; an empty body means the configured subscription. Strict: ``"yes"`` is no
boolean and ``5`` no scope. Errors are :class:`~remediation.errors.InputError` naming the field.
Imported only by the HTTP trigger, so a cold start that answers anything else never loads pydantic.
"""

from __future__ import annotations

import json

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from remediation.errors import InputError

#: What each field must be, in the words a caller needs (pydantic's own are about Python types).
_EXPECTED = {
    "scope": "must be a string (a subscription, resource group or NSG id)",
    "dryRun": "must be true or false",
    "acceptDetached": "must be a list of subnet ids",
}


class ReconcileRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    scope: str | None = None
    dry_run: bool = Field(default=False, alias="dryRun")
    accept_detached: list[str] = Field(default_factory=list, alias="acceptDetached")


def parse_reconcile_body(raw: bytes) -> ReconcileRequest:
    """The request's body as a :class:`ReconcileRequest`; InputError naming what is wrong."""
    if not raw.strip():
        return ReconcileRequest()
    try:
        body = json.loads(raw)
    except ValueError as exc:
        raise InputError(f"body is not JSON: {exc}", where="request body") from None
    except RecursionError:
        raise InputError("body is nested too deeply to read", where="request body") from None
    if not isinstance(body, dict):
        raise InputError('body must be a JSON object like {"scope": "...", "dryRun": false}', where="request body")
    try:
        return ReconcileRequest.model_validate(body)
    except ValidationError as exc:
        raise _input_error(exc) from None


def _input_error(exc: ValidationError) -> InputError:
    errors = exc.errors()
    unknown = sorted(str(e["loc"][0]) for e in errors if e["type"] == "extra_forbidden")
    if unknown:
        valid = ", ".join(_EXPECTED)
        return InputError(f"unknown field(s) {', '.join(unknown)} (valid: {valid})", where="request body")
    field = str(errors[0]["loc"][0]) if errors and errors[0]["loc"] else "request body"
    return InputError(_EXPECTED.get(field, errors[0]["msg"] if errors else "invalid"), where=field)
