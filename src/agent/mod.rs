//! Site agents: `lifeboat agent` at a customer's site works for the central service. It dials
//! out and never listens; it is known to the centre by its own OpenPGP key, which the centre
//! binds to one site and that site's tenant when the agent enrolls.
//!
//! - `token`: the one-time enrollment tokens an admin makes for a site;
//! - `enroll`: the enrollment itself, the centre's side (redeem a token, sign a statement)
//!   and the agent's (make a key, ask, check the answer, pin the centre).

pub mod enroll;
pub mod token;
