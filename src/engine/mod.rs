//! The rollout engine: a pure state machine. It takes an [`Input`] (something the
//! executor observed, a person's decision, or the passing of time) and the current
//! time, updates the [`Rollout`] and returns [`Command`]s for the executor. It reads no
//! clock, does no I/O and draws no random numbers, so a whole fleet rollout can be
//! replayed in a test and resumed after a crash from its stored state.
//!
//! Safety rules it enforces (DEVELOPERS.md): steps of a cluster run in plan order (the
//! control plane never skips a minor, a pool never passes the control plane); a ring
//! starts only after the previous ring passed, soaked and, where required, was
//! approved; one step at a time per cluster; never more clusters at once than the
//! wave allows; and a step whose intent was recorded is never sent again blindly.

mod drive;
mod input;
pub mod model;
mod settings;
pub mod stored;

pub use drive::{advance, describe};
pub use input::{Command, Input, NotifyEvent, Scope};
pub use model::*;
pub use settings::{PreflightSettings, RingSettings, Settings};
