//! The Entra ID route group: the token endpoint (`/{tenant}/oauth2/v2.0/token`) that
//! issues the tokens ARM and the clusters accept, the sign-in (`authorize`) pages, and
//! the tenant's OpenID metadata, keys and instance discovery.

use super::arm_routes::read_body;
use super::routes::{json_response, query_pairs};
use super::{Ctx, random_seed};
use crate::auth::{self};
use crate::shared::Shared;
use axum::extract::Request;
use axum::response::Response;
use http::{Method, StatusCode};
use serde_json::json;

pub(super) async fn identity(ctx: &Ctx, req: Request, segments: &[String]) -> Response {
    let shared = &ctx.shared;
    let seg: Vec<&str> = segments.iter().map(String::as_str).collect();
    match (req.method().clone(), seg.as_slice()) {
        (Method::POST, [tenant, "oauth2", "v2.0", "token"]) => {
            let tenant = tenant.to_string();
            let (_, body) = match read_body(req).await {
                Ok(x) => x,
                Err(r) => return r,
            };
            token(shared, &tenant, &body)
        }
        (Method::GET, [tenant, "oauth2", "v2.0", "authorize"]) if tenant.eq_ignore_ascii_case(&shared.tenant_id) => {
            crate::sign_in::form(shared, &query_pairs(req.uri().query()))
        }
        (Method::POST, [tenant, "oauth2", "v2.0", "authorize"]) if tenant.eq_ignore_ascii_case(&shared.tenant_id) => {
            match read_body(req).await {
                Ok((_, body)) => crate::sign_in::submit(shared, &query_pairs(Some(&String::from_utf8_lossy(&body)))),
                Err(r) => r,
            }
        }
        (Method::GET, [tenant, "discovery", "v2.0", "keys"]) if tenant.eq_ignore_ascii_case(&shared.tenant_id) => {
            json_response(StatusCode::OK, &crate::sign_in::jwks())
        }
        (
            Method::GET,
            [tenant, "v2.0", ".well-known", "openid-configuration"] | [tenant, ".well-known", "openid-configuration"],
        ) => {
            let base = format!("{}/{tenant}", shared.base_url);
            json_response(
                StatusCode::OK,
                &json!({
                    "token_endpoint": format!("{base}/oauth2/v2.0/token"),
                    "authorization_endpoint": format!("{base}/oauth2/v2.0/authorize"),
                    "device_authorization_endpoint": format!("{base}/oauth2/v2.0/devicecode"),
                    "issuer": format!("{base}/v2.0"),
                    "jwks_uri": format!("{base}/discovery/v2.0/keys"),
                    "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
                    "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
                    "subject_types_supported": ["pairwise"],
                    "id_token_signing_alg_values_supported": ["RS256"],
                    "scopes_supported": ["openid", "profile", "email", "offline_access"],
                    "tenant_region_scope": "EU",
                    "cloud_instance_name": "microsoftonline.com",
                }),
            )
        }
        (Method::GET, ["common", "discovery", "instance"]) => json_response(
            StatusCode::OK,
            &json!({ "tenant_discovery_endpoint": format!("{}/common/v2.0/.well-known/openid-configuration", shared.base_url), "api-version": "1.1", "metadata": [] }),
        ),
        _ => json_response(
            StatusCode::NOT_FOUND,
            &json!({ "error": { "code": "NotFound", "message": format!("No route for {}", req.uri().path()) } }),
        ),
    }
}

fn aad_error(status: StatusCode, error: &str, description: &str) -> Response {
    json_response(
        status,
        &json!({ "error": error, "error_description": description, "error_codes": [], "timestamp": chrono::Utc::now().to_rfc3339() }),
    )
}

pub(super) fn token(shared: &Shared, tenant: &str, body: &[u8]) -> Response {
    let form = query_pairs(Some(&String::from_utf8_lossy(body)));
    let get = |k: &str| form.iter().find(|(f, _)| f == k).map(|(_, v)| v.as_str());
    if !tenant.eq_ignore_ascii_case(&shared.tenant_id) {
        return aad_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            &format!("AADSTS90002: Tenant '{tenant}' not found."),
        );
    }
    let grant_type = get("grant_type");
    if !matches!(grant_type, Some("client_credentials" | "authorization_code")) {
        return aad_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "AADSTS70003: The simulator supports the client_credentials and authorization_code grants only.",
        );
    }
    if get("client_id") != Some(shared.client_id.as_str()) {
        return aad_error(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            "AADSTS700016: Application not found in the directory.",
        );
    }
    let secret_ok =
        get("client_secret").is_some_and(|s| constant_time_eq(s.as_bytes(), shared.client_secret.as_bytes()));
    // Workload identity sends a federated assertion instead of a secret.
    let assertion_ok = get("client_assertion_type") == Some("urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
        && get("client_assertion").is_some_and(|a| a.split('.').count() == 3);
    if !secret_ok && !assertion_ok {
        return aad_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "AADSTS7000215: Invalid client secret provided.",
        );
    }
    if grant_type == Some("authorization_code") {
        // A dashboard's sign-in: an ID token for the user who signed in.
        return match crate::sign_in::redeem(shared, &form) {
            Ok(answer) => json_response(StatusCode::OK, &answer),
            Err((error, description)) => aad_error(StatusCode::BAD_REQUEST, error, &description),
        };
    }
    let Some(audience) = get("scope").and_then(auth::audience_of_scope) else {
        return aad_error(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            "AADSTS70011: The provided scope is not valid; use '{resource}/.default'.",
        );
    };
    let lifetime = shared.world().fleet.arm.token_lifetime;
    let mut r = crate::rng::Rng::new(random_seed());
    let token = format!("sim.{}", r.hex(64));
    let grant = shared
        .tokens()
        .issue(token, audience, shared.client_id.clone(), lifetime);
    json_response(
        StatusCode::OK,
        &json!({ "token_type": "Bearer", "expires_in": grant.expires_in, "ext_expires_in": grant.expires_in, "access_token": grant.access_token }),
    )
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
