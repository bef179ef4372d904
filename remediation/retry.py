"""azure-core's retry policy with a cap on ``Retry-After``: the one retry policy of each HTTP client
that talks to Azure or a webhook (the ARM adapter, the Teams channel).

A server asking for a longer wait than the cap ends the call instead of holding a Function
instance asleep; the caller (Event Grid's redelivery, the next sweep) tries again later.
"""

from __future__ import annotations

from typing import Any

from azure.core.pipeline import PipelineResponse
from azure.core.pipeline.policies import RetryPolicy


class BoundedRetryPolicy(RetryPolicy[Any, Any]):
    """azure-core's retry policy, but a Retry-After longer than ``max_retry_after`` is not slept through."""

    def __init__(self, *, max_retry_after: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._max_retry_after = max_retry_after

    def is_retry(self, settings: dict[str, Any], response: PipelineResponse[Any, Any]) -> bool:
        retry_after = self.get_retry_after(response)
        if retry_after is not None and retry_after > self._max_retry_after:
            return False
        return bool(super().is_retry(settings, response))
