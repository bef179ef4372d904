"""ARM's error envelope, raised anywhere in the emulator and rendered by the server."""

from __future__ import annotations

from typing import Any


class ArmError(Exception):
    """An ARM error answer: ``{"error": {"code", "message", "details"?}}`` with an HTTP status."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        details: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details:
            error["details"] = self.details
        return {"error": error}


def not_found(resource_type: str, name: str, resource_group: str) -> ArmError:
    # ARM answers a missing top-level resource with ResourceNotFound and this wording.
    return ArmError(
        404,
        "ResourceNotFound",
        f"The Resource 'Microsoft.Network/{resource_type}/{name}' under resource group "
        f"'{resource_group}' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix",
    )


def child_not_found(kind: str, name: str, parent: str) -> ArmError:
    # Child resources (rules, subnets) answer NRP's plain NotFound.
    return ArmError(404, "NotFound", f"Resource {parent}/{kind}/{name} not found.")


def bad_request(code: str, message: str, details: list[dict[str, Any]] | None = None) -> ArmError:
    return ArmError(400, code, message, details=details)
