//! Everything that talks to providers: the egress client every outbound call goes through,
//! and per-provider-type targets (URL, authentication, model mapping, wire protocol).
//! Protocol encoding and translation live in `switchboard-protocols`; this crate knows
//! nothing about the store or HTTP routing.

pub mod egress;
pub mod target;

pub use egress::{EgressClient, EgressFailure, Timeouts};
pub use target::{
    SecretSource, TargetError, UpstreamSettings, UpstreamTarget, WireProtocol, build_target,
};
