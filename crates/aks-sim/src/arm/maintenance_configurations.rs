//! Maintenance configurations: the PUT of a cluster's `maintenanceConfigurations/{name}`,
//! checked as ARM checks it and stored as sent.

use super::write_checks::parse_body;
use super::{ArmReply, ArmRequest};
use crate::arm_json as j;
use crate::world::World;
use http::StatusCode;
use serde_json::json;

/// `PUT .../maintenanceConfigurations/{name}` (200 when it replaced one, 201 when new):
/// the body's `properties` checked as ARM checks them, then stored as sent, so that a
/// GET (and ringmaster's schedule) sees exactly what was written.
pub(super) fn put_maintenance(w: &mut World, r: &ArmRequest<'_>, ci: usize, name: &str) -> ArmReply {
    let body = match parse_body(r) {
        Ok(b) => b,
        Err(e) => return e,
    };
    let props = body.get("properties").cloned().unwrap_or_else(|| json!({}));
    if let Err(problems) = crate::maintenance::check(name, &props) {
        return ArmReply::rp_error(StatusCode::BAD_REQUEST, "InvalidParameter", problems.join("; "));
    }
    let name = crate::maintenance::known_name(name).unwrap_or_default();
    let c = &mut w.clusters[ci];
    let existed = c.maintenance.insert(name.to_string(), props.clone()).is_some();
    let status = if existed { StatusCode::OK } else { StatusCode::CREATED };
    ArmReply::with(status, Some(j::maintenance_configuration(c, name, &props)))
}
