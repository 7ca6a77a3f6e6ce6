#![allow(dead_code)]
pub mod demo_snapshot;
pub mod engine_driver;
