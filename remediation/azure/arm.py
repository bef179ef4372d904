"""The ARM adapter: discovery and NSG writes through azure-mgmt-network.

One class, :class:`ArmNetwork`, is the :class:`~remediation.ports.NsgSource`,
the :class:`~remediation.ports.NsgWriter` and (used only with
SERVICE_ENDPOINT_REPAIR) the :class:`~remediation.ports.SubnetWriter`; it
also reads the Service Tags API. It reads resources as the SDK's
models, hands their REST form (``Model.as_dict()``) to :mod:`remediation.parse`
and never interprets rules itself.

Writes are one PUT of the whole NSG carrying ``If-Match`` with the etag that
was read. The body is built from the raw resource that was read (so fields
the model does not know, such as ``flushConnection``, and every user rule's
exact text survive), with the plan's custom rule list in place of
``securityRules``. Subnet writes follow the same rule (the subnet as read, one service
endpoint added, If-Match). ARM's API reference does not document If-Match for NSGs,
so after the long-running operation ends the adapter also checks that no rule
present in the read has gone, and reports any that did.

Failures map onto the error hierarchy the triggers act on: 412 and 409
AnotherOperationInProgress are :class:`ConflictError`; throttling, 5xx,
failed long-running operations and lost connections, once azure-core's
bounded retries are spent, are :class:`TransientError`; anything else ARM
refuses is :class:`ArmRequestError` (not worth retrying as is).
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from azure.core.credentials import TokenCredential
from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    HttpResponseError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
    map_error,
)
from azure.core.paging import ItemPaged
from azure.core.pipeline import PipelineResponse
from azure.core.polling.base_polling import OperationFailed
from azure.core.rest import HttpRequest
from azure.identity import DefaultAzureCredential
from azure.mgmt.core.exceptions import ARMErrorFormat
from azure.mgmt.network import NetworkManagementClient

from remediation.azure.budget import ReadBudget, ReadBudgetPolicy
from remediation.azure.credential import RenewingCredential
from remediation.azure.neighbourhood import NeighbourhoodReader
from remediation.errors import AuthenticationFailure, ConflictError, InputError, RemediationError, TransientError
from remediation.model import (
    Inventory,
    NetworkSecurityGroup,
    VirtualNetwork,
)
from remediation.parse import parse_nic, parse_nsg, parse_vnet, unreadable_nsg
from remediation.parse_paths import parse_path_document
from remediation.paths import PathInventory, merge_paths
from remediation.plan import RemediationPlan
from remediation.ports import Gathered, SubnetWriteResult, TopologyCache, WriteResult
from remediation.resource_id import NIC, NIC_IP_CONFIGURATION, NSG, SUBNET, VNET, ResourceId
from remediation.retry import BoundedRetryPolicy
from remediation.scope import Scope, parse_scope

log = logging.getLogger(__name__)

_T = TypeVar("_T")

#: Read-only fields ARM returns that a PUT body must not echo back.
_READ_ONLY_NSG = frozenset(
    {
        "etag",
        "type",
        "provisioningState",
        "resourceGuid",
        "defaultSecurityRules",
        "subnets",
        "networkInterfaces",
        "flowLogs",
    }
)

if TYPE_CHECKING:
    from remediation.settings import Settings
_READ_ONLY_RULE = frozenset({"etag", "type", "provisioningState"})
#: Read-only subnet fields (ARM ignores them in a PUT; sending them back would only invite drift).
_READ_ONLY_SUBNET = frozenset(
    {
        "etag",
        "provisioningState",
        "ipConfigurations",
        "ipConfigurationProfiles",
        "privateEndpoints",
        "resourceNavigationLinks",
        "serviceAssociationLinks",
        "purpose",
    }
)
_CONFLICT_CODES = frozenset({"anotheroperationinprogress", "conflict", "retryableerror"})
_CORRELATION_HEADER = "x-ms-correlation-request-id"
#: The api-version of the collection reads (NSGs, VNets, NICs) sent as plain requests. Pinned here,
#: not taken from the SDK, so an SDK upgrade cannot change what a list returns; a GA version whose
#: resource shapes are what remediation.parse reads (the same one the RBAC map and the emulator's
#: operation links use).
LIST_API_VERSION = "2024-05-01"
_NETWORK = "providers/Microsoft.Network"


class OperationStillRunning(TransientError):
    """A write ARM accepted whose operation had not ended when the adapter stopped waiting."""


class ArmRequestError(RemediationError):
    """ARM refused a request in a way retrying as is will not fix (400, 403, 404 ...)."""

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None) -> None:
        self.status = status
        self.code = code
        super().__init__(message)


@dataclass(frozen=True, slots=True)
class ArmOptions:
    """Client behaviour. The defaults suit Azure; tests shorten the waits.

    ``retry_total`` bounds azure-core's retries of 408/429/5xx and lost
    connections; ``max_retry_after`` is the longest ``Retry-After`` honoured
    in-process (a longer one ends the call with TransientError so the caller,
    e.g. Event Grid, retries later instead of holding a Function instance);
    ``polling_interval`` is used when ARM sends no Retry-After while polling a
    long-running operation; ``max_poll_seconds`` is the longest a write waits
    for its operation (NRP suggests 10, 20, 40 s between polls) before leaving
    it to ARM and its check to the next run, so an invocation stays within its
    timeout; ``nic_list_threshold`` / ``vnet_list_threshold``
    are how many NICs / VNets are fetched one by one before listing the
    subscription's (paged, 100 a page) is cheaper.
    """

    retry_total: int = 4
    retry_backoff_factor: float = 0.8
    retry_backoff_max: float = 30.0
    max_retry_after: float = 60.0
    max_poll_seconds: float = 45.0
    polling_interval: float = 5.0
    connection_timeout: float = 10.0
    read_timeout: float = 60.0
    nic_list_threshold: int = 25
    vnet_list_threshold: int = 25


def default_credential(settings: Settings) -> TokenCredential:
    """``DefaultAzureCredential`` selecting the user-assigned identity by ``AZURE_CLIENT_ID``.

    The interactive and developer-tool credentials stay off: a Function must
    never wait on a browser, and locally the environment or managed-identity
    endpoint (the emulator's) is what answers. Rebuilt after a failure (see
    :mod:`remediation.azure.credential`), so an identity endpoint outage ends
    when the endpoint recovers, not when the instance recycles.
    """
    return RenewingCredential(
        lambda: DefaultAzureCredential(
            managed_identity_client_id=settings.client_id or None,
            exclude_interactive_browser_credential=True,
            exclude_visual_studio_code_credential=True,
            exclude_shared_token_cache_credential=True,
            exclude_powershell_credential=True,
            exclude_developer_cli_credential=True,
        )
    )


def build_client(
    settings: Settings,
    *,
    credential: TokenCredential | None = None,
    options: ArmOptions | None = None,
    subscription_id: str | None = None,
    budget: ReadBudget | None = None,
    **client_kwargs: Any,
) -> NetworkManagementClient:
    """A NetworkManagementClient on ``ARM_ENDPOINT`` with the scope derived from it.

    With ``budget``, every attempt (retries too) passes the read budget's policy.
    """
    options = options or ArmOptions()
    sub = subscription_id or settings.subscription_id
    if not sub:
        raise ArmRequestError("AZURE_SUBSCRIPTION_ID is not set; the ARM client needs a subscription")
    retry = BoundedRetryPolicy(
        max_retry_after=options.max_retry_after,
        retry_total=options.retry_total,
        retry_backoff_factor=options.retry_backoff_factor,
        retry_backoff_max=options.retry_backoff_max,
    )
    return NetworkManagementClient(
        credential or default_credential(settings),
        sub,
        base_url=settings.arm_endpoint,
        credential_scopes=[settings.arm_scope],
        retry_policy=retry,
        polling_interval=options.polling_interval,
        connection_timeout=options.connection_timeout,
        read_timeout=options.read_timeout,
        per_retry_policies=[ReadBudgetPolicy(budget)] if budget is not None else [],
        **client_kwargs,
    )


class ArmNetwork:
    """NsgSource, NsgWriter and SubnetWriter on one NetworkManagementClient.

    Thread-safe: the only state kept between calls is the raw NSG last read
    per id (the base of its PUT body), behind a lock; VNets and NICs are
    cached for one :meth:`inventory` call only.
    """

    def __init__(
        self,
        client: NetworkManagementClient,
        settings: Settings,
        *,
        options: ArmOptions | None = None,
        subscription_id: str | None = None,
        budget: ReadBudget | None = None,
        topology: TopologyCache | None = None,
    ):
        self._client = client
        #: What ARM showed last (the sweep rebuilds it; events take their neighbourhood from it).
        #: Without one, an event reads the subscription as a sweep does.
        self.topology = topology
        #: ARM's read budget as this client last saw it (None when the client was built without one).
        self.budget = budget
        self._settings = settings
        #: The subscription the client was built for (the one its typed calls address).
        self._subscription = subscription_id or settings.subscription_id
        self._options = options or ArmOptions()
        self._raw_nsgs: dict[str, dict[str, Any]] = {}
        self._parsed: dict[str, tuple[tuple[str, tuple[str, ...], tuple[str, ...]], NetworkSecurityGroup]] = {}
        self._parsed_vnets: dict[str, tuple[str, VirtualNetwork]] = {}
        self._lock = threading.Lock()
        self._neighbours = (
            NeighbourhoodReader(
                read=self._read_raw,
                list_group_nics=self._list_group_nics,
                parse_nsg=self._remember,
                parse_vnet=lambda raw: self._parse_vnet(raw, str(raw.get("id", ""))),
                cache=topology,
                lockdown_tag=settings.lockdown_tag,
            )
            if topology is not None
            else None
        )

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        credential: TokenCredential | None = None,
        options: ArmOptions | None = None,
        subscription_id: str | None = None,
        budget: ReadBudget | None = None,
        topology: TopologyCache | None = None,
        **client_kwargs: Any,
    ) -> ArmNetwork:
        """A client on the app settings, spending ARM's reads through ``budget`` (a new one by default)."""
        budget = budget or ReadBudget()
        client = build_client(
            settings,
            credential=credential,
            options=options,
            subscription_id=subscription_id,
            budget=budget,
            **client_kwargs,
        )
        return cls(client, settings, options=options, subscription_id=subscription_id, budget=budget, topology=topology)

    def close(self) -> None:
        self._client.close()

    # ------------------------------------------------------------------ reads

    def inventory(self, scope: str, *, extra_subnet_ids: Collection[str] = ()) -> Inventory:
        """Tagged NSGs under ``scope``, plus the VNets (subnets) and NICs they reach.

        Also included: the NSGs of those NICs and subnets that are not tagged
        (they decide the end-to-end flows too), and the VNets of
        ``extra_subnet_ids`` (subnets remembered as managed, which may have
        lost their NSG and with it the back-reference that leads here). One
        pass: every VNet and NIC is fetched once; a VNet that is gone is
        left out, any other failure raises.
        """
        parsed = parse_scope(scope, subscription_id=self._settings.subscription_id)
        nsgs_raw = self._list_nsgs(parsed)
        tag = self._settings.lockdown_tag.lower()
        managed = [raw for raw in nsgs_raw if any(str(k).lower() == tag for k in (raw.get("tags") or {}))]
        if parsed.nsg_name:
            managed = nsgs_raw  # an NSG named explicitly is reported on even untagged
        nsgs = {n.key: n for n in (self._remember(raw) for raw in managed)}

        vnet_ids: dict[str, str] = {}
        nic_ids: dict[str, str] = {}
        for subnet_id in (*(s for n in nsgs.values() for s in n.subnet_ids), *extra_subnet_ids):
            subnet_rid = ResourceId.try_parse(subnet_id)
            parent = subnet_rid.parent if subnet_rid is not None and subnet_rid.is_a(SUBNET) else None
            if parent is not None:
                vnet_ids.setdefault(parent.key, str(parent))
        for nsg in nsgs.values():
            for nic_id in nsg.nic_ids:
                nic_ids.setdefault(nic_id.lower(), nic_id)

        vnets: list[VirtualNetwork] = []
        managed_subnets = {s.lower() for n in nsgs.values() for s in n.subnet_ids}
        vnets_raw = self._get_vnets_raw(vnet_ids)
        for vnet_raw in vnets_raw:
            vnet_id = str(vnet_raw.get("id", ""))
            vnets.append(self._parse_vnet(vnet_raw, vnet_id))
            # NICs in managed subnets: their own NSGs also decide the flows.
            for subnet in (vnet_raw.get("properties") or {}).get("subnets") or []:
                if str(subnet.get("id", "")).lower() not in managed_subnets:
                    continue
                for config in (subnet.get("properties") or {}).get("ipConfigurations") or []:
                    # A NIC's IP configuration (VMSS and load-balancer configurations name no NIC).
                    config_rid = ResourceId.try_parse(config.get("id"))
                    nic_rid = config_rid.parent if config_rid and config_rid.is_a(NIC_IP_CONFIGURATION) else None
                    if nic_rid is not None:
                        nic_ids.setdefault(nic_rid.key, str(nic_rid))

        nics_raw = self._get_nics_raw(nic_ids)
        nics = [parse_nic(raw, where=str(raw.get("id", "NIC"))) for raw in nics_raw]
        extra_nsg_ids = {n.nsg_id.lower(): n.nsg_id for n in nics if n.nsg_id and n.nsg_id.lower() not in nsgs}
        for vnet in vnets:
            for subnet in vnet.subnets:
                if subnet.nsg_id and subnet.nsg_id.lower() not in nsgs:
                    extra_nsg_ids.setdefault(subnet.nsg_id.lower(), subnet.nsg_id)
        all_by_id = {str(raw.get("id", "")).lower(): raw for raw in nsgs_raw}
        read_nsgs = {str(raw.get("id", "")).lower(): raw for raw in managed}
        for key, nsg_id in extra_nsg_ids.items():
            raw = all_by_id.get(key) or self._get_nsg_raw(nsg_id, missing_ok=True)
            if raw is not None:
                nsgs[key] = self._remember(raw)
                read_nsgs[key] = raw
        if parsed.kind == "subscription":  # the whole picture: the topology cache is rebuilt from it
            self._rebuild_topology(read_nsgs.values(), vnets_raw, nics_raw)
        return Inventory(nsgs=tuple(nsgs.values()), vnets=tuple(vnets), nics=tuple(nics))

    def neighbourhood(self, affected: Collection[str], *, extra_subnet_ids: Collection[str] = ()) -> Gathered:
        """What the events naming ``affected`` touch, read from ARM, the rest from the topology cache.

        See :mod:`remediation.azure.neighbourhood`. Before any sweep has built the cache, absence
        from it proves nothing: the subscription is read once, as a sweep reads it, and the cache
        built from that.
        """
        built = None
        if self._neighbours is not None and self.topology is not None:
            try:
                built = self.topology.built_at()
            except Exception:  # the cache unreadable: judge from ARM, as without one
                log.exception("the topology cache is unreadable; reading the subscription")
        if built is None or self._neighbours is None:
            inventory = self.inventory(f"/subscriptions/{self._subscription}", extra_subnet_ids=extra_subnet_ids)
            return Gathered(inventory, vnet_ids=frozenset(v.key for v in inventory.vnets))
        return self._neighbours.gather(affected, extra_subnet_ids=extra_subnet_ids)

    def _rebuild_topology(
        self, nsgs: Iterable[dict[str, Any]], vnets: Iterable[dict[str, Any]], nics: Iterable[dict[str, Any]]
    ) -> None:
        """The sweep is the cache's authority; a failure to store it costs later events reads, nothing else."""
        if self._neighbours is None or self.topology is None:
            return
        try:
            changed = self.topology.rebuild(self._neighbours.cache_entries(nsgs, vnets, nics))
        except Exception:
            log.exception("rebuilding the topology cache failed; events read what it lacks from ARM")
            return
        log.info("topology cache rebuilt: %d entries written or dropped", changed)

    def _read_raw(self, kind: str, resource_id: str) -> dict[str, Any] | None:
        """One GET of an NSG, VNet or NIC as ARM's JSON; None when ARM says it does not exist."""
        if kind == "nsg":
            return self._get_nsg_raw(resource_id, missing_ok=True)
        if kind == "vnet":
            return self._get_vnet_raw(resource_id)
        return self._get_nic_raw(resource_id)

    def _list_group_nics(self, subscription_id: str, resource_group: str) -> list[dict[str, Any]]:
        path = f"/subscriptions/{subscription_id}/resourceGroups/{resource_group}/{_NETWORK}/networkInterfaces"
        return self._list(f"list NICs in {resource_group}", path)

    def paths(self, subscription_id: str) -> PathInventory:
        """PathSource: route tables, Azure Firewalls, firewall policies, IP groups and VNets (their
        peerings) of the subscription, and each policy's rule collection groups: list pages only."""
        base = f"/subscriptions/{subscription_id}/{_NETWORK}"
        found = {
            rtype: self._list(f"list {rtype}", f"{base}/{rtype}")
            for rtype in ("routeTables", "azureFirewalls", "firewallPolicies", "ipGroups")
        }
        if not any(found.values()):
            return PathInventory()  # nothing on the path: no VNet listing for peerings either
        found["virtualNetworks"] = self._list("list virtualNetworks", f"{base}/virtualNetworks")
        groups = [
            self._list(f"list rule collection groups of {policy.get('name')}", f"{policy['id']}/ruleCollectionGroups")
            for policy in found["firewallPolicies"]
            if isinstance(policy.get("id"), str)
        ]
        documents = [*found.items(), *(("ruleCollectionGroups", g) for g in groups)]
        return merge_paths(*(parse_path_document(doc, where=f"ARM {rtype}") for rtype, doc in documents))

    def get_nsg(self, nsg_id: str) -> NetworkSecurityGroup:
        raw = self._get_nsg_raw(nsg_id, missing_ok=False)
        assert raw is not None  # missing_ok=False raises instead
        return self._remember(raw)

    def service_tags_document(self, location: str) -> dict[str, Any]:
        """The Service Tags API's answer for ``location`` as ARM sends it (camelCase JSON).

        ``{"name", "id", "type", "changeNumber", "cloud", "values": [...]}``; the ``values``
        are what :func:`remediation.tags.exact_from_documents` reads. One request, no paging.
        """
        what = f"list service tags in {location}"
        body = self._call(what, lambda: self._client.service_tags.list(location).as_dict())
        if not isinstance(body, dict) or not isinstance(body.get("values"), list):
            raise ArmRequestError(f"{what}: the answer has no 'values' list")
        # The typed call returns the first page only; the API may page with nextLink.
        next_link = body.pop("nextLink", None)
        while next_link:
            request = HttpRequest("GET", str(next_link))
            page = self._call(what, functools.partial(self._get_json, request))
            body["values"].extend(page.get("values") or [])
            next_link = page.get("nextLink")
        return body

    def service_tags(self, location: str) -> list[dict[str, Any]]:
        """The published tags (name, id, properties.addressPrefixes ...) the API gives for ``location``."""
        return list(self.service_tags_document(location)["values"])

    def _list_nsgs(self, scope: Scope) -> list[dict[str, Any]]:
        if scope.nsg_name and scope.resource_group:
            one = self._get_nsg_raw(scope.id, missing_ok=True)
            return [one] if one is not None else []
        if scope.resource_group:
            rg = scope.resource_group
            path = f"/subscriptions/{scope.subscription_id}/resourceGroups/{rg}/{_NETWORK}/networkSecurityGroups"
            return self._list(f"list NSGs in {rg}", path)
        return self._list("list NSGs", f"/subscriptions/{scope.subscription_id}/{_NETWORK}/networkSecurityGroups")

    def _list(self, what: str, path: str) -> list[dict[str, Any]]:
        """Every page of a collection as ARM's JSON, through the client's documented ``send_request``.

        The resources are parsed from JSON anyway, so the SDK's typed models would only be built
        to be turned back into dicts: that was most of a sweep's time beyond the HTTP round trips
        (benchmarks/bench_sweep.py). Same pipeline (credential, retries) and errors as a typed call.
        """
        first = HttpRequest("GET", path, params={"api-version": LIST_API_VERSION})
        return self._call(what, lambda: list(self._pages(first)))

    def _get_json(self, request: HttpRequest) -> dict[str, Any]:
        """One request through the client's pipeline, its JSON body; errors raised as the SDK does."""
        response = self._client.send_request(request)
        if response.status_code >= 400:
            error_map = {401: ClientAuthenticationError, 404: ResourceNotFoundError}
            map_error(status_code=response.status_code, response=response, error_map=error_map)
            raise HttpResponseError(response=response, error_format=ARMErrorFormat)
        body = response.json()
        return body if isinstance(body, dict) else {}

    def _pages(self, first: HttpRequest) -> ItemPaged[dict[str, Any]]:
        """ARM's paging (``value`` and ``nextLink``) as azure-core's ItemPaged."""

        def get_page(next_link: str | None) -> dict[str, Any]:
            return self._get_json(first if next_link is None else HttpRequest("GET", next_link))

        def split(body: dict[str, Any]) -> tuple[str | None, Iterator[dict[str, Any]]]:
            return body.get("nextLink") or None, iter(body.get("value") or [])

        return ItemPaged(get_page, split)

    def _get_nsg_raw(self, nsg_id: str, *, missing_ok: bool) -> dict[str, Any] | None:
        nsg = _parts(nsg_id, NSG)
        rg, name = nsg.resource_group, nsg.name
        return self._get(
            f"get NSG {nsg_id}",
            lambda: self._client.network_security_groups.get(rg, name).as_dict(),
            missing_ok=missing_ok,
        )

    def _get_vnets_raw(self, vnet_ids: Mapping[str, str]) -> list[dict[str, Any]]:
        if len(vnet_ids) > self._options.vnet_list_threshold:
            listed = self._list("list VNets", f"/subscriptions/{self._subscription}/{_NETWORK}/virtualNetworks")
            return [r for r in listed if str(r.get("id", "")).lower() in vnet_ids]
        fetched = (self._get_vnet_raw(vnet_id) for vnet_id in vnet_ids.values())
        return [raw for raw in fetched if raw is not None]

    def _get_vnet_raw(self, vnet_id: str) -> dict[str, Any] | None:
        vnet = _parts(vnet_id, VNET)
        rg, name = vnet.resource_group, vnet.name
        return self._get(
            f"get VNet {vnet_id}", lambda: self._client.virtual_networks.get(rg, name).as_dict(), missing_ok=True
        )

    def _get_nic_raw(self, nic_id: str) -> dict[str, Any] | None:
        nic = _parts(nic_id, NIC)
        rg, name = nic.resource_group, nic.name
        return self._get(
            f"get NIC {nic_id}", lambda: self._client.network_interfaces.get(rg, name).as_dict(), missing_ok=True
        )

    def _get_nics_raw(self, nic_ids: Mapping[str, str]) -> list[dict[str, Any]]:
        if not nic_ids:
            return []
        raws: list[dict[str, Any]]
        if len(nic_ids) > self._options.nic_list_threshold:
            listed = self._list("list NICs", f"/subscriptions/{self._subscription}/{_NETWORK}/networkInterfaces")
            raws = [r for r in listed if str(r.get("id", "")).lower() in nic_ids]
        else:
            fetched = (self._get_nic_raw(nic_id) for nic_id in nic_ids.values())
            raws = [raw for raw in fetched if raw is not None]
        return raws

    def _parse_vnet(self, raw: dict[str, Any], vnet_id: str) -> VirtualNetwork:
        """Parse a VNet, reusing the last parse while its etag (which every subnet write changes) holds."""
        key, etag = vnet_id.lower(), raw.get("etag")
        with self._lock:
            hit = self._parsed_vnets.get(key)
        if etag and hit is not None and hit[0] == etag:
            return hit[1]
        vnet = parse_vnet(raw, where=vnet_id)
        if etag:
            with self._lock:
                self._parsed_vnets[key] = (str(etag), vnet)
        return vnet

    def _remember(self, raw: dict[str, Any]) -> NetworkSecurityGroup:
        """Parse an NSG read from ARM, reusing the last parse when ARM says nothing changed.

        Every write to an NSG (rules, tags) gives it a new etag; its subnet and
        NIC back-references are compared too, since associations are written on
        the subnet or NIC. An event re-reads the whole subscription, so this
        spares parsing thousands of unchanged NSGs per event.
        """
        key = str(raw.get("id", "")).lower()
        props = raw.get("properties") or {}
        etag = raw.get("etag")
        fingerprint = (
            (
                str(etag),
                tuple(str(s.get("id", "")) for s in props.get("subnets") or [] if isinstance(s, dict)),
                tuple(str(n.get("id", "")) for n in props.get("networkInterfaces") or [] if isinstance(n, dict)),
            )
            if etag
            else None
        )
        with self._lock:
            hit = self._parsed.get(key)
        if fingerprint is not None and hit is not None and hit[0] == fingerprint:
            nsg = hit[1]
        else:
            try:
                nsg = parse_nsg(raw, where=str(raw.get("id", "NSG")))
            except InputError as exc:  # ARM holds it, so ARM accepted it: one NSG must not stop the guard
                log.error("NSG %s cannot be read; judged as unreadable, never written: %s", raw.get("id"), exc)
                nsg = unreadable_nsg(raw, where=str(raw.get("id", "NSG")), error=exc)
                fingerprint = None
        with self._lock:
            self._raw_nsgs[nsg.key] = raw
            if fingerprint is not None:
                self._parsed[nsg.key] = (fingerprint, nsg)
        return nsg

    # ------------------------------------------------------------------ writes

    def apply(self, nsg: NetworkSecurityGroup, plan: RemediationPlan) -> WriteResult:
        """One PUT of the whole NSG with If-Match, followed to its end, then the lost-rule check."""
        if not self._settings.enforce:
            return WriteResult(nsg_id=nsg.id, written=False, error="REMEDIATION_MODE is audit: nothing written")
        if plan.is_empty:
            return WriteResult(nsg_id=nsg.id, written=False)
        if not nsg.etag:
            raise ArmRequestError(f"NSG {nsg.id} was read without an etag; refusing an unconditional write")
        body = self._put_body(nsg, plan)
        parts = _parts(nsg.id, NSG)
        rg, name = parts.resource_group, parts.name
        try:
            after_raw, correlation = self._put_if_match(
                "NSG",
                nsg.id,
                nsg.etag,
                self._client.network_security_groups.begin_create_or_update,
                rg,
                name,
                body,  # the REST JSON form, which the typed operation documents beside its model
            )
        except OperationStillRunning as running:
            return WriteResult(nsg_id=nsg.id, written=True, error=str(running))
        after = self._remember(after_raw)
        before_names = {r.name.lower(): r.name for r in nsg.security_rules}
        after_names = {r.name.lower() for r in after.security_rules}
        lost = tuple(name for key, name in before_names.items() if key not in after_names)
        if lost:
            log.error("NSG %s lost rules %s in the write (correlation %s)", nsg.id, lost, correlation)
        return WriteResult(
            nsg_id=nsg.id,
            written=True,
            correlation_id=correlation[0] if correlation else None,
            lost_rules=lost,
            after=after,
        )

    def _put_body(self, nsg: NetworkSecurityGroup, plan: RemediationPlan) -> dict[str, Any]:
        """The read resource minus read-only fields, with the plan's custom rules."""
        with self._lock:
            raw = self._raw_nsgs.get(nsg.key)
        if raw is None or raw.get("etag") != nsg.etag:
            raw = {"location": nsg.location, "tags": dict(nsg.tags), "properties": {}}
        props = {k: v for k, v in (raw.get("properties") or {}).items() if k not in _READ_ONLY_NSG}
        raw_rules = {
            str(r.get("name", "")).lower(): r for r in (raw.get("properties") or {}).get("securityRules") or []
        }
        rewritten = {r.name.lower() for r in plan.added + plan.replaced}
        rules: list[dict[str, Any]] = []
        for rule in plan.security_rules:
            original = raw_rules.get(rule.name.lower())
            if original is not None and rule.name.lower() not in rewritten:
                rules.append(_writable_rule(original))  # a user rule, exactly as read
            else:
                rules.append(rule.to_arm())
        props["securityRules"] = rules
        body: dict[str, Any] = {k: v for k, v in raw.items() if k not in _READ_ONLY_NSG and k != "properties"}
        body["location"] = raw.get("location") or nsg.location
        body["tags"] = raw.get("tags") if raw.get("tags") is not None else dict(nsg.tags)
        body["properties"] = props
        return body

    def add_service_endpoints(self, subnet_id: str, services: Sequence[str], *, nsg_id: str) -> SubnetWriteResult:
        """GET the subnet, add the missing services to ``serviceEndpoints``, PUT with If-Match, verify.

        Every other property (NSG, route table, NAT gateway, delegations, other endpoints,
        policies) is sent back exactly as read. A subnet no longer attached to ``nsg_id`` is
        not written. New endpoints carry no ``locations``, so Azure applies its default (the
        VNet's region, and its pair for Storage), as the portal and CLI do.
        """
        if not self._settings.enforce:
            return SubnetWriteResult(subnet_id, written=False, error="REMEDIATION_MODE is audit: nothing written")
        subnet = _parts(subnet_id, SUBNET)
        rg, vnet, name = subnet.resource_group, subnet.name_of("virtualNetworks"), subnet.name
        raw = self._call(f"get subnet {subnet_id}", lambda: self._client.subnets.get(rg, vnet, name).as_dict())
        props = raw.get("properties") or {}
        attached = str((props.get("networkSecurityGroup") or {}).get("id") or "")
        if attached.lower() != nsg_id.lower():
            return SubnetWriteResult(
                subnet_id,
                written=False,
                error=f"subnet is attached to {attached or 'no NSG'}, not to the managed NSG {nsg_id}: not written",
            )
        before = _endpoint_services(props)
        missing = tuple(s for s in services if s.lower() not in {b.lower() for b in before})
        if not missing:
            return SubnetWriteResult(subnet_id, written=False, endpoints_before=before, endpoints_after=before)
        etag = raw.get("etag")
        if not etag:
            raise ArmRequestError(f"subnet {subnet_id} was read without an etag; refusing an unconditional write")
        body = {k: v for k, v in raw.items() if k not in _READ_ONLY_SUBNET and k != "properties"}
        new_props = {k: v for k, v in props.items() if k not in _READ_ONLY_SUBNET}
        endpoints = [
            {k: v for k, v in e.items() if k != "provisioningState"} for e in props.get("serviceEndpoints") or []
        ]
        new_props["serviceEndpoints"] = endpoints + [{"service": s} for s in missing]
        body["properties"] = new_props
        after_raw, correlation = self._put_if_match(
            "subnet",
            subnet_id,
            etag,
            self._client.subnets.begin_create_or_update,
            rg,
            vnet,
            name,
            body,
        )
        after = _endpoint_services(after_raw.get("properties") or {})
        have = {a.lower() for a in after}
        result = SubnetWriteResult(
            subnet_id,
            written=True,
            added=missing,
            endpoints_before=before,
            endpoints_after=after,
            missing_after=tuple(s for s in missing if s.lower() not in have),
            lost_endpoints=tuple(b for b in before if b.lower() not in have),
            correlation_id=correlation[0] if correlation else None,
        )
        if result.missing_after or result.lost_endpoints:
            log.error(
                "subnet %s after the write: missing %s, lost %s", subnet_id, result.missing_after, result.lost_endpoints
            )
        return result

    def _put_if_match(
        self, kind: str, resource_id: str, etag: str, begin: Callable[..., Any], *args: Any
    ) -> tuple[dict[str, Any], list[str]]:
        """One PUT conditional on ``etag``, its long-running operation followed to the end.

        Returns the resource as written and ARM's correlation ids, which are logged
        whatever the outcome (a support case needs them most when the write fails).
        """
        correlation, hook = _correlation_recorder()

        def write() -> dict[str, Any]:
            poller = begin(
                *args,
                headers={"If-Match": etag},
                raw_response_hook=hook,
                polling_interval=self._options.polling_interval,
            )
            # NRP suggests 10, 20, 40 s between polls: wait at most max_poll_seconds, then leave the
            # operation to ARM (the poller's own thread ends with it) and the check to the next run.
            done = poller.result(timeout=self._options.max_poll_seconds)
            if not poller.done():
                raise OperationStillRunning(
                    f"write {kind} {resource_id}: accepted (correlation {', '.join(correlation) or 'unknown'}), "
                    f"its operation still running after {self._options.max_poll_seconds:g} s; the next delivery "
                    "or sweep verifies it"
                )
            result: dict[str, Any] = done.as_dict() if hasattr(done, "as_dict") else dict(done)
            return result

        try:
            return self._call(f"write {kind} {resource_id}", write), correlation
        finally:
            log.info("PUT %s (If-Match %s): correlation ids %s", resource_id, etag, ", ".join(correlation) or "<none>")

    # ------------------------------------------------------------------ errors

    def _get(self, what: str, fn: Callable[[], _T], *, missing_ok: bool) -> _T | None:
        try:
            return self._call(what, fn)
        except ArmRequestError as exc:
            if missing_ok and exc.status == 404:
                return None
            raise

    def _call(self, what: str, fn: Callable[[], _T]) -> _T:
        try:
            return fn()
        except ResourceNotFoundError as exc:
            raise ArmRequestError(f"{what}: not found ({_code(exc)})", status=404, code=_code(exc)) from exc
        except ClientAuthenticationError as exc:
            # The identity endpoint failing and ARM's 401 both land here: transient (issue 11, item 3).
            raise AuthenticationFailure(f"{what}: authentication failed: {exc.message}") from exc
        except HttpResponseError as exc:
            raise _map_http_error(what, exc) from exc
        except (ServiceRequestError, ServiceResponseError) as exc:
            raise TransientError(f"{what}: connection to ARM failed after retries: {exc.message}") from exc
        except AzureError as exc:
            raise TransientError(f"{what}: {exc.message}") from exc


def _correlation_recorder() -> tuple[list[str], Callable[[PipelineResponse[Any, Any]], None]]:
    """A raw-response hook collecting ARM's correlation ids of one write (for the logs and the audit trail)."""
    correlation: list[str] = []

    def hook(response: PipelineResponse[Any, Any]) -> None:
        value = response.http_response.headers.get(_CORRELATION_HEADER)
        if value and value not in correlation:
            correlation.append(value)

    return correlation, hook


def _map_http_error(what: str, exc: HttpResponseError) -> RemediationError:
    status = exc.status_code
    code = _code(exc)
    detail = f"{what}: HTTP {status} {code or ''} {_message(exc)}".strip()
    if isinstance(exc.__cause__, OperationFailed):
        # The operation's own code (ARM: {"status": "Failed"|"Canceled", "error": {"code", ...}}) is what a
        # support case and an operator need: CanceledAndSupersededDueToAnotherOperation, a quota ...
        return TransientError(f"{what}: the long-running operation failed: {code or 'no code'}: {_message(exc)}")
    if status == 412:
        return ConflictError(f"{what}: the resource changed since it was read (412 precondition failed)")
    if status == 409 and (code or "").lower() in _CONFLICT_CODES:
        return ConflictError(f"{what}: {code}: {_message(exc)}")
    if status in (408, 429) or (status is not None and status >= 500):
        error = TransientError(detail)
        headers = getattr(exc.response, "headers", None) or {}
        retry_after = headers.get("Retry-After")
        if retry_after:
            error.retry_after = retry_after  # type: ignore[attr-defined]
        return error
    return ArmRequestError(detail, status=status, code=code)


def _code(exc: HttpResponseError) -> str | None:
    error = getattr(exc, "error", None)
    code = getattr(error, "code", None)
    return str(code) if code else None


def _message(exc: HttpResponseError) -> str:
    """ARM's error message (first line), else the HTTP reason."""
    error = getattr(exc, "error", None)
    text = str(getattr(error, "message", None) or exc.reason or exc.message or "")
    return text.splitlines()[0] if text else ""


def _writable_rule(raw: Mapping[str, Any]) -> dict[str, Any]:
    props = {k: v for k, v in (raw.get("properties") or {}).items() if k not in _READ_ONLY_RULE}
    body = {k: v for k, v in raw.items() if k not in _READ_ONLY_RULE and k != "properties"}
    body["properties"] = props
    return body


def _parts(resource_id: str, resource_type: str) -> ResourceId:
    """``resource_id`` parsed; ArmRequestError unless it is an id of ``resource_type``."""
    parsed = ResourceId.try_parse(resource_id)
    if parsed is None or not parsed.is_a(resource_type) or not parsed.resource_group:
        raise ArmRequestError(f"{resource_id!r} is not a {resource_type} resource id")
    return parsed


def _endpoint_services(props: Mapping[str, Any]) -> tuple[str, ...]:
    return tuple(str(e.get("service", "")) for e in props.get("serviceEndpoints") or [] if isinstance(e, Mapping))
