//! Tiers, schedules and retention: pure functions of data and an injected clock.

pub mod due;
pub mod retention;
pub mod rpo;
pub mod simulate;
pub mod tier;
