//! ARM reads outside `Microsoft.ContainerService` that a fleet-wide preflight needs:
//! compute usages (vCPU quotas) and virtual network usages (subnet addresses). Routed
//! from `arm::dispatch`, so they are authenticated, throttled and logged like every
//! other ARM read.

use super::arm::{ArmReply, ArmRequest, capture, only_get};
use super::shared::Shared;
use super::world::World;
use http::StatusCode;
use serde_json::{Value, json};

/// Answers the request if it is one of these reads.
pub(super) fn route(shared: &Shared, w: &World, r: &ArmRequest<'_>) -> Option<ArmReply> {
    let s = &r.segments;
    if let Some(c) = capture(
        s,
        &[
            "subscriptions",
            "*",
            "providers",
            "Microsoft.Compute",
            "locations",
            "*",
            "usages",
        ],
    ) {
        return Some(only_get(r.method, || compute_usages(shared, w, r, c[0], c[1])));
    }
    if let Some(c) = capture(
        s,
        &[
            "subscriptions",
            "*",
            "resourceGroups",
            "*",
            "providers",
            "Microsoft.Network",
            "virtualNetworks",
            "*",
            "usages",
        ],
    ) {
        return Some(only_get(r.method, || vnet_usages(w, c[0], c[1], c[2])));
    }
    None
}

/// `GET /subscriptions/{s}/providers/Microsoft.Compute/locations/{l}/usages`: Azure's
/// `ListUsagesResult` (`{value: [{currentValue, limit, name: {value, localizedValue},
/// unit}], nextLink}`), paged like the other lists of the simulator.
fn compute_usages(shared: &Shared, w: &World, r: &ArmRequest<'_>, sub: &str, location: &str) -> ArmReply {
    let all = super::quota::usages(w, sub, location);
    let skip: usize = r.query("$skipToken").and_then(|t| t.parse().ok()).unwrap_or(0);
    let size = w.fleet.arm.page_size;
    let page: Vec<Value> = all.iter().skip(skip).take(size).cloned().collect();
    let mut body = json!({ "value": page });
    if skip + size < all.len() {
        body["nextLink"] = json!(format!(
            "{}/subscriptions/{sub}/providers/Microsoft.Compute/locations/{location}/usages?api-version={}&$skipToken={}",
            shared.base_url,
            r.api_version,
            skip + size
        ));
    }
    ArmReply::ok(body)
}

/// `GET .../Microsoft.Network/virtualNetworks/{vnet}/usages`: one entry per subnet.
fn vnet_usages(w: &World, sub: &str, rg: &str, vnet: &str) -> ArmReply {
    let found = w.fleet.virtual_networks.iter().position(|v| {
        v.subscription.eq_ignore_ascii_case(sub)
            && v.resource_group.eq_ignore_ascii_case(rg)
            && v.name.eq_ignore_ascii_case(vnet)
    });
    match found {
        Some(vi) => ArmReply::ok(super::network::usages(w, vi)),
        None => ArmReply::arm_error(
            StatusCode::NOT_FOUND,
            "ResourceNotFound",
            format!(
                "The Resource 'Microsoft.Network/virtualNetworks/{vnet}' under resource group '{rg}' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix"
            ),
        ),
    }
}
