"""MongoDB replica-set membership (``PUT /v1/replication/members``): create the set, or change it one
member at a time towards the wanted members.

``replSetInitiate`` when the set does not exist yet (``replSetGetConfig`` answers NotYetInitialized);
else, on the primary only, one ``replSetReconfig`` step (``replset.py``: one member added or removed per
call, version + 1; a removal that would leave no healthy voting majority is refused). A secondary
answers 409 (Conflict): only the primary can reconfigure, and the caller asks the member that reports
itself primary. A member restored from another set's backup creates the set from its data
(``adopt_restored``). https://www.mongodb.com/docs/manual/reference/command/replSetReconfig/
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from kubetrove.agent.engines.base import Conflict, Unsupported
from kubetrove.agent.engines.mongodb.errors import MEMBERSHIP_REFUSALS, NOT_YET_INITIALIZED, CommandFailed
from kubetrove.agent.engines.mongodb.replset import initiate_config, majority_lost, member_hosts, next_step
from kubetrove.agent.engines.mongodb.switchover import Commands
from kubetrove.agent.protocol import MembershipAction, MembersReply, SetMember

# replSetReconfig waits (by default forever) for a majority to install the new config; bounded so the
# agent answers before the operator's HTTP timeout. Past it the next call re-reads the config.
RECONFIG_MAX_TIME_MS = 20_000

Document = Mapping[str, Any]


def set_members(d: Commands, members: Sequence[SetMember]) -> MembersReply:
    """Initiate the set with ``members``, or (on the primary) change one member towards them."""
    hello = d.command("admin", {"hello": 1})
    if not (hello.get("setName") or hello.get("isreplicaset")):
        raise Unsupported("mongod was not started with --replSet: it cannot form a replica set")
    reply = refused_as_conflict(d, {"replSetGetConfig": 1}, NOT_YET_INITIALIZED)
    if reply is None:  # NotYetInitialized: no set yet, this member creates it
        config = initiate_config(set_name(d), members)
        refused_as_conflict(d, {"replSetInitiate": config})
        return MembersReply(
            action=MembershipAction.INITIATED, added=member_hosts(config), complete=True, version=1
        )
    config = reply["config"]
    if not hello.get("setName"):  # a config this member is not in
        return adopt_restored(d, config, members)
    if not hello.get("isWritablePrimary"):
        primary = hello.get("primary") or "none elected yet"
        raise Conflict(f"only the primary can reconfigure the set; this member is not (primary: {primary})")
    step = next_step(config, members)
    if step is None:
        return MembersReply(action=MembershipAction.UNCHANGED, complete=True, version=config["version"])
    if step.removed is not None and step.removed == hello.get("me"):
        raise Conflict(f"the primary {step.removed} is not among the requested members: step it down first")
    if step.removed is not None:
        lost = majority_lost(step, d.command("admin", {"replSetGetStatus": 1}))
        if lost is not None:
            raise Conflict(lost)
    refused_as_conflict(d, {"replSetReconfig": step.config, "maxTimeMS": RECONFIG_MAX_TIME_MS})
    return MembersReply(
        action=MembershipAction.RECONFIGURED,
        added=[step.added] if step.added else [],
        removed=[step.removed] if step.removed else [],
        complete=next_step(step.config, members) is None,
        version=step.config["version"],
    )


def adopt_restored(d: Commands, config: Document, members: Sequence[SetMember]) -> MembersReply:
    """A member holding another set's config: restored from a backup of that set, or left out of ours.

    A physical backup carries the source set's config (``local.system.replset``) naming the source's
    hosts; mongod started on those files answers "Does not have a valid replica set config". When
    none of those hosts is wanted here, the config belongs to a set that is not this cluster, and
    the set is created from this member's data as ``replSetInitiate`` would create it, by a forced
    ``replSetReconfig`` (the only command that replaces a config a member is not in): nothing of this
    cluster can be rolled back by it. The other members join by initial sync from it. When some
    old host IS wanted, this is a member our own set does not list (yet): only its primary may add
    it, so 409.
    """
    old = member_hosts(config)
    wanted = {m.host for m in members}
    if wanted & set(old):
        raise Conflict(
            f"this member is not in the set's config (members: {', '.join(old)}); the primary adds it"
        )
    new = {**initiate_config(str(config["_id"]), members), "version": int(config["version"]) + 1}
    refused_as_conflict(d, {"replSetReconfig": new, "force": True})
    return MembersReply(
        action=MembershipAction.INITIATED,
        added=member_hosts(new),
        removed=old,
        complete=True,
        version=new["version"],
    )


def refused_as_conflict(d: Commands, cmd: Document, *ok_codes: int) -> Any:
    """``try_command`` on admin, with the server's "not now / not here" refusals raised as Conflict (409)."""
    try:
        return d.try_command("admin", cmd, *ok_codes)
    except CommandFailed as exc:
        if exc.mongo_code in MEMBERSHIP_REFUSALS:
            raise Conflict(str(exc)) from exc
        raise


def set_name(d: Commands) -> str:
    """The set name mongod runs with (``hello`` of an uninitiated member has no setName)."""
    parsed = d.command("admin", {"getCmdLineOpts": 1}).get("parsed", {})
    replication = parsed.get("replication", {})
    name = replication.get("replSetName") or replication.get("replSet")
    if not name:
        raise Unsupported("mongod reports no replica-set name in getCmdLineOpts")
    return str(name)
