#![allow(dead_code)]
pub mod demo_snapshot;
