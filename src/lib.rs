//! plumb: a GitOps reconciliation daemon.
//!
//! The pipeline reads in one direction, a module per stage, each named after
//! what it produces:
//!
//! ```text
//! source ──► render ──► plan ──► apply ──► status
//! (git)     (desired)   (diff)   (SSA,     (inventory, health,
//!                                prune)     metrics, API, page)
//! ```
//!
//! Under them: [`config`] (the two config files), [`yaml`] (YAML with
//! positions, so every error names file and line) and [`names`]. Over them:
//! [`cli`], one file per subcommand; `main.rs` is a thin edge.

pub mod apply;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod engine;
pub mod git_url;
pub mod health;
pub mod http;
pub mod lease;
pub mod live;
pub mod metrics;
pub mod model;
pub mod names;
pub mod plan;
pub mod records;
pub mod render;
pub mod rollout;
pub mod shard;
pub mod source;
pub mod status;
pub mod yaml;
