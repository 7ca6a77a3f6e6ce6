//! The typed ARM client for AKS (api-version 2026-10-01): models that keep unknown
//! fields, one error type for both error shapes, a long-running-operation poller,
//! retries that never re-send a write blindly, and a client-side budget per
//! subscription. `azure_mgmt_containerservice` was examined and rejected (aks-facts.md).

pub mod budget;
pub mod client;
pub mod error;
pub mod http;
pub mod lro;
pub mod models;
pub mod telemetry;

pub use crate::domain::fleet::ClusterId;
pub use client::{AksClient, PoolOverrides, Submitted};
pub use error::ArmError;
pub use http::{ArmHttp, RetryPolicy};
pub use lro::OperationRef;

/// The one ARM api-version ringmaster speaks.
pub const API_VERSION: &str = "2026-10-01";

use crate::clock::Clock;
use crate::identity::{AzureConfig, AzureTokens, IdentityError};
use std::sync::Arc;

/// Builds the client for a configuration: the same code path for Azure and the simulator.
pub fn connect(config: &AzureConfig, clock: Arc<dyn Clock>) -> Result<AksClient, IdentityError> {
    let http = config.http_client()?;
    let tokens = Arc::new(AzureTokens::new(config.clone(), http.clone())?);
    let budget = budget::Budget::new(clock.clone(), budget::READS, budget::WRITES);
    Ok(AksClient::new(ArmHttp::new(
        http,
        &config.arm_endpoint,
        tokens,
        clock,
        budget,
        RetryPolicy::default(),
    )))
}
