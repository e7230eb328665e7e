//! Lifeboat: backup verification and disaster recovery for managed service providers.
//!
//! The library holds everything; `main.rs` only parses the command line and calls into `cli`.
//! Layers, top to bottom: `cli` → `repo` / `source` / `catalog` → `backend`.

pub mod agent;
pub mod api;
pub mod backend;
pub mod catalog;
pub mod cli;
pub mod config;
pub mod credential;
pub mod daemon;
pub mod drill;
pub mod evidence;
pub mod files;
pub mod hypervisor;
pub mod progress;
pub mod repo;
pub mod report;
pub mod schedule;
pub mod source;
