//! Integration tests: the real binary, over HTTP, on SQLite and (when configured) PostgreSQL.

mod gateway;
mod harness;

mod access;
mod audit;
mod balancer;
mod catalogue;
mod defaults;
mod durability;
mod hostile;
mod identity;
mod inference;
mod input_bounds;
mod interactions;
mod isolation;
mod keys;
mod memory_bounds;
mod ops;
mod providers;
mod replicas;
mod secrets;
mod shared_limits;
mod telemetry;
mod ui;
mod upstream_abuse;
mod validation;
