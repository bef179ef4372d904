"""An event reads the memory of the managed NSGs it re-read, not the subscription's (issue 12).

Before: every event read the whole ``managed`` partition (5,000 rows at 5,000 NSGs) to judge
one NSG's lost tag. The store contract is in tests/test_state_attachments.py; here the service,
over tests/test_service.py's in-memory ARM with the real Table store (Azurite), counting the rows
Table Storage answers as tests/alerts/test_alert_scope.py counts alert states.
"""

from __future__ import annotations

from remediation.findings import FindingKind
from tests.support.table_queries import count_queries
from tests.test_service import CC, CLUSTER, RG
from tests.test_service_attachments import arm, grid, on, sweep
from tests.test_state import table_store

OTHER = RG.replace("/resourceGroups/", "/resourceGroups/other-")


def remembered(n: int) -> str:
    return f"{OTHER}/providers/Microsoft.Network/networkSecurityGroups/nsg-{n}"


def test_an_event_reads_only_the_managed_rows_of_the_nsgs_it_re_read(azurite: str) -> None:
    state, source = table_store(azurite), arm()
    sweep(source, state)  # remembers CC and CLUSTER
    state.save_managed_nsgs({remembered(n): "cluster" for n in range(40)})  # the rest of a subscription

    answered = count_queries(state._table("attachments"))
    source.nsgs[CC.lower()]["tags"] = {}  # a person removes the lockdown tag: the event must still see it
    report = on(source, state, grid(CC, "Microsoft.Network/networkSecurityGroups/write", "e-1"))
    lost = [f.nsg.lower() for f in report.findings if f.kind is FindingKind.NSG_UNMANAGED]
    assert lost == [CC.lower()]
    # Before: all 42 rows of the partition, on every event; now only the NSGs the event re-read.
    rows = [str(e["nsg_id"]).lower() for e in answered.entities if e["PartitionKey"] == "managed"]
    assert rows
    assert set(rows) <= {CC.lower(), CLUSTER.lower()}, rows
    assert any("RowKey eq" in f for f in answered.filters), answered.filters
    # The 40 NSGs the event did not read are neither judged nor forgotten.
    assert len(state.managed_nsgs()) == 41

    answered.clear()
    report = sweep(source, state)
    # The sweep still reads every row, and judges the 40 it cannot find.
    assert len([e for e in answered.entities if e["PartitionKey"] == "managed"]) == 41
    assert len([f for f in report.findings if f.kind is FindingKind.NSG_UNMANAGED]) == 40
