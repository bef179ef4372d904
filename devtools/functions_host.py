"""What the Azure Functions host does with ``function_app.app``, for the demo, tests and benchmarks.

The host indexes the app's functions and calls each one's plain Python function with the
trigger's input; these helpers do the same in-process (nothing here is deployed).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import azure.functions as func


@functools.cache
def _indexed(app: func.FunctionApp) -> dict[str, Any]:
    # FunctionApp.get_functions() refuses to index twice, so do it once per app.
    return {str(f.get_function_name()): f for f in app.get_functions()}


def user_function(app: func.FunctionApp, name: str) -> Callable[..., Any]:
    """The plain Python function behind the trigger ``name``, as the host calls it."""
    fn: Callable[..., Any] = _indexed(app)[name].get_user_function()
    return fn


def bindings(app: func.FunctionApp) -> dict[str, list[dict[str, Any]]]:
    """Each function's bindings as the host indexes them."""
    return {name: f.get_bindings_dict()["bindings"] for name, f in _indexed(app).items()}
