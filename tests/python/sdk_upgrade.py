#!/usr/bin/env python3
"""Drives the AKS simulator with Azure's own Python SDK, unchanged.

Proves that a real Azure client (azure-identity + azure-mgmt-containerservice, with
azure-core's ARM long-running-operation poller) works against the simulator: token
from the simulator's Entra endpoint, upgrade profile, cluster list (paged), agent pool
GET, a control-plane upgrade then a pool upgrade (PUT + Azure-AsyncOperation polling),
node image upgrades (POST + 202 + Location / Azure-AsyncOperation, and the 200
answer when the pool is already current), then a rollback of the upgraded pool to the
newest of its upgrade profile's recentlyUsedVersions (a PUT setting nodeImageVersion).

Prints exactly one JSON line on stdout with what the SDK saw; tests/sim_python_sdk.rs
compares it with the simulator's own state. Exits 3 when the SDK is not installed.

Environment (the simulator's env file names them too):
  AZURE_TENANT_ID, AZURE_CLIENT_ID, AZURE_CLIENT_SECRET, AZURE_AUTHORITY_HOST
  RINGMASTER_ARM_ENDPOINT       the simulator's ARM base URL
  RINGMASTER_SUBSCRIPTION_ID    subscription to use (default: first of RINGMASTER_SUBSCRIPTION_IDS)
  REQUESTS_CA_BUNDLE / SSL_CERT_FILE   the simulator's CA certificate (ca.pem)
  RINGMASTER_SDK_LOG=1          log every HTTP request and response line to stderr

Defaults name clusters of examples/fleets/demo.yaml; flags override them.
"""

import argparse
import json
import logging
import os
import sys
import time

try:
    from importlib.metadata import version as dist_version

    from azure.identity import ClientSecretCredential
    from azure.mgmt.containerservice import ContainerServiceClient
except ImportError as e:  # pragma: no cover - exercised when the SDK is missing
    print(
        f"azure SDK not importable ({e}); run: pip install azure-identity azure-mgmt-containerservice",
        file=sys.stderr,
    )
    sys.exit(3)

ARM_SCOPE = "https://management.azure.com/.default"


def env(name):
    value = os.environ.get(name)
    if not value:
        print(f"missing environment variable {name}", file=sys.stderr)
        sys.exit(2)
    return value


def pool_view(pool):
    p = pool.properties
    u = p.upgrade_settings
    return {
        "name": pool.name,
        "orchestrator_version": p.orchestrator_version,
        "current_orchestrator_version": p.current_orchestrator_version,
        "node_image_version": p.node_image_version,
        "provisioning_state": p.provisioning_state,
        "count": p.count,
        "mode": p.mode,
        "os_type": p.os_type,
        "max_surge": u.max_surge if u else None,
        "etag": p.e_tag,
    }


def cluster_view(mc):
    p = mc.properties
    return {
        "name": mc.name,
        "id": mc.id,
        "location": mc.location,
        "tags": dict(mc.tags or {}),
        "kubernetes_version": p.kubernetes_version,
        "current_kubernetes_version": p.current_kubernetes_version,
        "provisioning_state": p.provisioning_state,
        "pools": {a.name: a.current_orchestrator_version for a in (p.agent_pool_profiles or [])},
    }


def recent_view(pool_profile):
    """The pool upgrade profile's recentlyUsedVersions, as plain values."""
    return [
        {
            "orchestrator_version": r.orchestrator_version,
            "node_image_version": r.node_image_version,
            "timestamp": r.timestamp.isoformat() if r.timestamp else None,
        }
        for r in (pool_profile.properties.recently_used_versions or [])
    ]


def timed(poller):
    """Waits for an LRO with the SDK's own poller; returns (result, status, seconds)."""
    started = time.monotonic()
    result = poller.result(timeout=300)
    return result, poller.status(), round(time.monotonic() - started, 3)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--resource-group", default="rg-dev-weu")
    ap.add_argument("--cluster", default="aks-dev-weu-01")
    ap.add_argument("--pool", default="user1")
    ap.add_argument("--to-version", default="1.33.3")
    # A pool whose node image is behind its region's latest: a real 202 LRO.
    ap.add_argument("--image-resource-group", default="rg-dev-neu")
    ap.add_argument("--image-cluster", default="aks-dev-neu-01")
    ap.add_argument("--image-pool", default="system")
    args = ap.parse_args()
    if os.environ.get("RINGMASTER_SDK_LOG"):
        logging.basicConfig(stream=sys.stderr, level=logging.WARNING, format="%(name)s: %(message)s")
        logging.getLogger("azure.core.pipeline.policies.http_logging_policy").setLevel(logging.INFO)

    subscription = os.environ.get("RINGMASTER_SUBSCRIPTION_ID") or env("RINGMASTER_SUBSCRIPTION_IDS").split(",")[0]
    arm = env("RINGMASTER_ARM_ENDPOINT")
    credential = ClientSecretCredential(
        env("AZURE_TENANT_ID"),
        env("AZURE_CLIENT_ID"),
        env("AZURE_CLIENT_SECRET"),
        authority=env("AZURE_AUTHORITY_HOST"),
        disable_instance_discovery=True,
    )
    client = ContainerServiceClient(credential, subscription, base_url=arm, credential_scopes=[ARM_SCOPE])
    rg, name, pool_name = args.resource_group, args.cluster, args.pool
    out = {
        "sdk": {
            "azure-identity": dist_version("azure-identity"),
            "azure-mgmt-containerservice": dist_version("azure-mgmt-containerservice"),
            "azure-core": dist_version("azure-core"),
            "azure-mgmt-core": dist_version("azure-mgmt-core"),
            "api_version": client._config.api_version,  # pylint: disable=protected-access
        },
        "subscription": subscription,
    }

    # 1. The control plane's upgrade profile.
    prof = client.managed_clusters.get_upgrade_profile(rg, name)
    cp = prof.properties.control_plane_profile
    out["upgrade_profile"] = {
        "id": prof.id,
        "control_plane_version": cp.kubernetes_version,
        "upgrades": [u.kubernetes_version for u in (cp.upgrades or [])],
        "pools": {
            a.name: {
                "kubernetes_version": a.kubernetes_version,
                "upgrades": [u.kubernetes_version for u in (a.upgrades or [])],
            }
            for a in prof.properties.agent_pool_profiles
        },
    }

    # 2. Every cluster of the subscription (the SDK follows nextLink).
    out["clusters"] = [cluster_view(mc) for mc in client.managed_clusters.list()]

    # 3. The pool as it is.
    pool = client.agent_pools.get(rg, name, pool_name)
    out["pool_before"] = pool_view(pool)

    # 4. Control plane first: GET, set kubernetesVersion, keep pools as returned, PUT.
    mc = client.managed_clusters.get(rg, name)
    out["cluster_before"] = cluster_view(mc)
    mc.properties.kubernetes_version = args.to_version
    poller = client.managed_clusters.begin_create_or_update(rg, name, mc)
    result, status, secs = timed(poller)
    out["control_plane"] = cluster_view(result) | {"poller_status": status, "seconds": secs}

    # 5. Then the pool: GET, set orchestratorVersion, PUT the whole body back.
    pool = client.agent_pools.get(rg, name, pool_name)
    pool.properties.orchestrator_version = args.to_version
    poller = client.agent_pools.begin_create_or_update(rg, name, pool_name, pool)
    result, status, secs = timed(poller)
    out["pool_after"] = pool_view(result) | {"poller_status": status, "seconds": secs}
    out["cluster_after"] = cluster_view(client.managed_clusters.get(rg, name))

    # 6. Node image upgrade on a pool that is behind: 202 + LRO.
    irg, icl, ipool = args.image_resource_group, args.image_cluster, args.image_pool
    before = client.agent_pools.get(irg, icl, ipool)
    latest = client.agent_pools.get_upgrade_profile(irg, icl, ipool).properties.latest_node_image_version
    poller = client.agent_pools.begin_upgrade_node_image_version(irg, icl, ipool)
    _, status, secs = timed(poller)
    after = client.agent_pools.get(irg, icl, ipool)
    out["node_image"] = {
        "cluster": icl,
        "pool": ipool,
        "before": before.properties.node_image_version,
        "latest": latest,
        "after": after.properties.node_image_version,
        "provisioning_state": after.properties.provisioning_state,
        "poller_status": status,
        "seconds": secs,
    }

    # 7. The same on the pool just upgraded, already on the latest image (200, no body).
    latest = client.agent_pools.get_upgrade_profile(rg, name, pool_name).properties.latest_node_image_version
    poller = client.agent_pools.begin_upgrade_node_image_version(rg, name, pool_name)
    _, status, secs = timed(poller)
    after = client.agent_pools.get(rg, name, pool_name)
    out["node_image_current"] = {
        "cluster": name,
        "pool": pool_name,
        "latest": latest,
        "after": after.properties.node_image_version,
        "provisioning_state": after.properties.provisioning_state,
        "poller_status": status,
        "seconds": secs,
    }

    # 8. Roll the upgraded pool back to the newest pair it left: GET, set nodeImageVersion
    #    and orchestratorVersion from recentlyUsedVersions, PUT; the list is then empty.
    recent = recent_view(client.agent_pools.get_upgrade_profile(rg, name, pool_name))
    target = recent[0] if recent else {}
    pool = client.agent_pools.get(rg, name, pool_name)
    before = pool_view(pool)
    pool.properties.node_image_version = target.get("node_image_version")
    pool.properties.orchestrator_version = target.get("orchestrator_version")
    poller = client.agent_pools.begin_create_or_update(rg, name, pool_name, pool)
    result, status, secs = timed(poller)
    out["rollback"] = {
        "recent_before": recent,
        "before": before,
        "result": pool_view(result),
        "after": pool_view(client.agent_pools.get(rg, name, pool_name)),
        "recent_after": recent_view(client.agent_pools.get_upgrade_profile(rg, name, pool_name)),
        "poller_status": status,
        "seconds": secs,
    }

    print(json.dumps(out, sort_keys=True), flush=True)


if __name__ == "__main__":
    main()
