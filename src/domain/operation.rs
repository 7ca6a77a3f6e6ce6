//! Where to follow a long-running ARM operation: plain data, so the engine can hold it in
//! its state and commands without knowing ARM. Reading it from a response's headers and
//! following it are the ARM client's (`arm::lro`).

use serde::{Deserialize, Serialize};

/// Where to follow an operation; what the store records right after the call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperationRef {
    pub async_url: Option<String>,
    pub location_url: Option<String>,
}
