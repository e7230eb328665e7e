//! Bearer credentials of the form `<prefix><id>_<secret>`: a 12-hex-digit id that lists and
//! logs may show, and 256 random bits of secret of which only the SHA-256 is ever stored.
//! API tokens (`lb_`) and sites' enrollment tokens (`lbe_`) are made and checked here.

use base64::Engine;
use sha2::{Digest, Sha256};

const ID_LEN: usize = 12;

/// A new credential: its id, the SHA-256 of its secret (to store), and the whole credential
/// (to hand out once).
pub struct Minted {
    pub id: String,
    pub secret_sha256: String,
    pub presented: String,
}

pub fn mint(prefix: &str) -> Minted {
    let id = hex::encode(rand::random::<[u8; ID_LEN / 2]>());
    let secret = new_secret();
    Minted {
        secret_sha256: secret_hash(&secret),
        presented: format!("{prefix}{id}_{secret}"),
        id,
    }
}

/// 256 random bits, URL-safe base64 (also a session's cookie value).
pub fn new_secret() -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>())
}

pub fn secret_hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// The id and secret of a presented credential with `prefix`, if it has the shape of one.
pub fn split<'a>(presented: &'a str, prefix: &str) -> Option<(&'a str, &'a str)> {
    presented
        .strip_prefix(prefix)
        .and_then(|rest| rest.split_at_checked(ID_LEN))
        .and_then(|(id, rest)| Some((id, rest.strip_prefix('_')?)))
        .filter(|(id, secret)| id.bytes().all(|b| b.is_ascii_hexdigit()) && !secret.is_empty())
}

/// Whether `secret` is the one whose hash is `stored_sha256` (in constant time).
pub fn matches(stored_sha256: &str, secret: &str) -> bool {
    subtle::ConstantTimeEq::ct_eq(secret_hash(secret).as_bytes(), stored_sha256.as_bytes()).into()
}
