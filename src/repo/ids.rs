//! Typed ids. Every id is a SHA-256: of a chunk's plaintext (chunk ids) or of an object's stored
//! bytes (pack, index, snapshot and config ids). They never cross a module edge as bare strings.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;
use std::str::FromStr;

/// A SHA-256 digest.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Hash(pub [u8; 32]);

impl Hash {
    pub fn of(data: &[u8]) -> Hash {
        Hash(Sha256::digest(data).into())
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    pub fn from_hex(s: &str) -> Option<Hash> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out).ok()?;
        Some(Hash(out))
    }
}

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", &self.to_hex()[..12])
    }
}

impl fmt::Display for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

macro_rules! typed_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub Hash);

        impl $name {
            pub fn of(data: &[u8]) -> Self {
                $name(Hash::of(data))
            }
            pub fn to_hex(&self) -> String {
                self.0.to_hex()
            }
            /// The first 8 hex digits, as shown to people.
            pub fn short(&self) -> String {
                self.0.to_hex()[..8].to_string()
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), self.0)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }

        impl FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                Hash::from_hex(s)
                    .map($name)
                    .ok_or_else(|| format!("'{s}' is not a {} (64 hex digits)", stringify!($name)))
            }
        }

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.to_hex())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

typed_id!(
    /// SHA-256 of a chunk's plaintext.
    ChunkId
);
typed_id!(
    /// SHA-256 of a pack object's stored (encrypted) bytes.
    PackId
);
typed_id!(
    /// SHA-256 of an index object's stored bytes.
    IndexId
);
typed_id!(
    /// SHA-256 of a snapshot manifest object's stored bytes.
    SnapshotId
);
typed_id!(
    /// SHA-256 of the repository config object's stored bytes.
    ConfigId
);
