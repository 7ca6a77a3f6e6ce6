//! The HTTP API over real HTTP (axum on 127.0.0.1:0, reqwest): every endpoint,
//! authentication (static tokens and Entra ID JWTs against a JWKS server on loopback),
//! approvals (approver groups, expiry, concurrent approvals), refusals that change
//! nothing and are audited, and the CLI client against the same server.

#[path = "../support/mod.rs"]
mod support;

mod approvals;
mod auth;
mod cli;
mod dashboard_api;
mod endpoints;
mod eta_late;
mod hardening;
mod harness;
mod jwt;
mod store_reads;
