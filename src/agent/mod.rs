//! Site agents: `lifeboat agent` at a customer's site works for the central service. It dials
//! out and never listens; it is known to the centre by its own OpenPGP key, which the centre
//! binds to one site and that site's tenant when the agent enrolls.
//!
//! - `token`: the one-time enrollment tokens an admin makes for a site;
//! - `enroll`: the enrollment itself, the centre's side (redeem a token, sign a statement)
//!   and the agent's (make a key, ask, check the answer, pin the centre).
//! - `request`: agents' requests, signed with their key and accepted once;
//! - `client`: the agent's HTTPS link to the centre;
//! - `check_in`, `run`: an enrolled agent saying it is alive, once or for as long as it runs.

pub mod assignment;
pub mod check_in;
pub mod client;
pub mod enroll;
pub mod jobs;
pub mod outbox;
pub mod request;
pub mod run;
pub mod token;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Catalog(#[from] crate::catalog::Error),
    #[error(transparent)]
    Crypto(#[from] crate::repo::crypto::CryptoError),
    /// A check of what the centre said failed, or what was asked cannot be: the message says
    /// why.
    #[error("{0}")]
    Refused(String),
    /// The centre answered with an error (`status`): its message says why.
    #[error("{message} ({status})")]
    Centre { status: u16, message: String },
    #[error("{0}")]
    Other(String),
}

pub type Result<T> = std::result::Result<T, Error>;
