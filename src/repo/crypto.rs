//! OpenPGP for the repository: loading keys and certificates, encrypting to the recipients,
//! signing with the service key, and decrypting and authenticating what was written.
//!
//! Everything is plain OpenPGP (RFC 4880 / RFC 9580) so that stock tools (`sq`, `gpg`) can read
//! the repository without Lifeboat.

use sequoia_openpgp as openpgp;

use openpgp::cert::prelude::*;
use openpgp::crypto::{KeyPair, SessionKey};
use openpgp::packet::{PKESK, SKESK};
use openpgp::parse::stream::{
    DecryptionHelper, DecryptorBuilder, MessageLayer, MessageStructure, VerificationHelper,
    VerifierBuilder,
};
use openpgp::parse::Parse;
use openpgp::policy::StandardPolicy;
use openpgp::serialize::stream::{Encryptor, LiteralWriter, Message, Signer};
use openpgp::serialize::SerializeInto;
use openpgp::types::{Features, KeyFlags, SymmetricAlgorithm};
use openpgp::{Cert, Fingerprint, KeyHandle};
use std::io::{Read, Write};
use std::path::Path;

static POLICY: StandardPolicy<'static> = StandardPolicy::new();

#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    #[error("cannot read key or certificate {path}: {reason}")]
    Load { path: String, reason: String },
    #[error("{0}")]
    Key(String),
    #[error("cannot decrypt: {0}")]
    Decrypt(String),
    #[error("signature check failed: {0}")]
    Signature(String),
    #[error("OpenPGP error: {0}")]
    Other(String),
}

pub type Result<T> = std::result::Result<T, CryptoError>;

fn other(e: impl std::fmt::Display) -> CryptoError {
    CryptoError::Other(e.to_string())
}

fn encryption_flags() -> KeyFlags {
    KeyFlags::empty()
        .set_storage_encryption()
        .set_transport_encryption()
}

/// A public certificate: a repository recipient or the service's signing certificate.
#[derive(Clone, Debug)]
pub struct PublicCert(Cert);

/// A secret key: a recipient's (to decrypt) or the service's (to sign).
#[derive(Clone)]
pub struct SecretKey(Cert);

impl PublicCert {
    pub fn from_bytes(data: &[u8]) -> Result<PublicCert> {
        Cert::from_bytes(data)
            .map(|c| PublicCert(c.strip_secret_key_material()))
            .map_err(other)
    }

    pub fn load(path: &Path) -> Result<PublicCert> {
        let data = std::fs::read(path).map_err(|e| CryptoError::Load {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        Self::from_bytes(&data).map_err(|e| CryptoError::Load {
            path: path.display().to_string(),
            reason: format!("{e} (expected an OpenPGP certificate, armored or binary)"),
        })
    }

    pub fn fingerprint(&self) -> Fingerprint {
        self.0.fingerprint()
    }

    /// The first user id, for messages.
    pub fn name(&self) -> String {
        self.0
            .userids()
            .next()
            .map(|u| String::from_utf8_lossy(u.userid().value()).into_owned())
            .unwrap_or_default()
    }

    /// "FINGERPRINT (name)", for messages.
    pub fn describe(&self) -> String {
        let name = self.name();
        if name.is_empty() {
            self.fingerprint().to_hex()
        } else {
            format!("{} ({name})", self.fingerprint().to_hex())
        }
    }

    pub fn armored(&self) -> Result<String> {
        let bytes = self.0.armored().to_vec().map_err(other)?;
        String::from_utf8(bytes).map_err(other)
    }

    /// Checks that the certificate can receive encrypted data now.
    pub fn check_encryption_capable(&self) -> Result<()> {
        let valid = self.0.with_policy(&POLICY, None).map_err(|e| {
            CryptoError::Key(format!("certificate {} is not valid: {e}", self.describe()))
        })?;
        if valid
            .keys()
            .supported()
            .alive()
            .revoked(false)
            .key_flags(encryption_flags())
            .next()
            .is_none()
        {
            return Err(CryptoError::Key(format!(
                "certificate {} has no usable encryption key",
                self.describe()
            )));
        }
        Ok(())
    }

    /// Checks that the certificate can serve as a repository's recipient: valid now, with a
    /// usable encryption subkey, and readable by stock gpg 2.2 and sq 0.27 (it advertises
    /// SEIPDv1; a certificate that only takes SEIPDv2 gets messages those tools cannot open).
    pub fn usable_recipient(&self) -> std::result::Result<(), String> {
        self.check_encryption_capable().map_err(|e| e.to_string())?;
        let valid = self
            .0
            .with_policy(&POLICY, None)
            .map_err(|e| format!("not valid: {e}"))?;
        if let Some(features) = valid.features() {
            if !features.supports_seipdv1() {
                return Err(
                    "it takes only SEIPDv2 messages, which gpg 2.2 and sq 0.27 cannot read; \
                     make the key with 'lifeboat keys generate' or gpg"
                        .into(),
                );
            }
        }
        Ok(())
    }

    /// Fingerprints of all encryption-capable (sub)keys.
    fn encryption_key_handles(&self) -> Vec<Fingerprint> {
        self.0
            .keys()
            .filter(|k| {
                k.clone()
                    .with_policy(&POLICY, None)
                    .map(|v| v.has_any_key_flag(encryption_flags()))
                    .unwrap_or(false)
            })
            .map(|k| k.key().fingerprint())
            .collect()
    }
}

impl SecretKey {
    pub fn load(path: &Path) -> Result<SecretKey> {
        let data = std::fs::read(path).map_err(|e| CryptoError::Load {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        let cert = Cert::from_bytes(&data).map_err(|e| CryptoError::Load {
            path: path.display().to_string(),
            reason: format!("{e} (expected an OpenPGP secret key, armored or binary)"),
        })?;
        if !cert.is_tsk() {
            return Err(CryptoError::Load {
                path: path.display().to_string(),
                reason: format!(
                    "{} is a public certificate, not a secret key; give the secret key file",
                    cert.fingerprint()
                ),
            });
        }
        Ok(SecretKey(cert))
    }

    pub fn fingerprint(&self) -> Fingerprint {
        self.0.fingerprint()
    }

    pub fn public(&self) -> PublicCert {
        PublicCert(self.0.clone().strip_secret_key_material())
    }

    /// Generates a v4 key (Curve25519) with a signing and an encryption subkey.
    ///
    /// The certificate advertises only SEIPDv1 so that messages encrypted to it can be read by
    /// the stock tools of today's distributions (gpg 2.2, sq 0.27).
    pub fn generate(name: &str) -> Result<SecretKey> {
        let (cert, _revocation) = CertBuilder::new()
            .add_userid(name)
            .set_cipher_suite(CipherSuite::Cv25519)
            .set_features(Features::empty().set_seipdv1())
            .map_err(other)?
            .add_signing_subkey()
            .add_subkey(encryption_flags(), None, None)
            .generate()
            .map_err(other)?;
        Ok(SecretKey(cert))
    }

    pub fn armored(&self) -> Result<String> {
        let bytes = self.0.as_tsk().armored().to_vec().map_err(other)?;
        String::from_utf8(bytes).map_err(other)
    }

    fn unlock(
        key: openpgp::packet::Key<
            openpgp::packet::key::SecretParts,
            openpgp::packet::key::UnspecifiedRole,
        >,
    ) -> Result<KeyPair> {
        let fingerprint = key.fingerprint();
        let key = if key.has_unencrypted_secret() {
            key
        } else {
            let passphrase = std::env::var("LIFEBOAT_KEY_PASSPHRASE").map_err(|_| {
                CryptoError::Key(format!(
                    "secret key {} is protected by a passphrase; set LIFEBOAT_KEY_PASSPHRASE",
                    key.fingerprint()
                ))
            })?;
            key.decrypt_secret(&passphrase.into()).map_err(|e| {
                CryptoError::Key(format!(
                    "cannot unlock secret key {fingerprint} with LIFEBOAT_KEY_PASSPHRASE: {e}"
                ))
            })?
        };
        key.into_keypair().map_err(other)
    }

    fn signing_keypair(&self) -> Result<KeyPair> {
        let valid = self.0.with_policy(&POLICY, None).map_err(|e| {
            CryptoError::Key(format!("key {} is not valid: {e}", self.fingerprint()))
        })?;
        let key = valid
            .keys()
            .secret()
            .alive()
            .revoked(false)
            .for_signing()
            .next()
            .ok_or_else(|| {
                CryptoError::Key(format!(
                    "key {} has no usable secret signing key",
                    self.fingerprint()
                ))
            })?;
        Self::unlock(key.key().clone().role_into_unspecified())
    }

    /// Whether this key can decrypt messages encrypted to `cert`.
    pub fn can_decrypt_for(&self, cert: &PublicCert) -> bool {
        let ours: Vec<Fingerprint> = self
            .0
            .keys()
            .secret()
            .map(|k| k.key().fingerprint())
            .collect();
        cert.encryption_key_handles()
            .iter()
            .any(|f| ours.contains(f))
    }
}

/// Encrypts `plaintext` to every recipient as one OpenPGP message (binary).
pub fn encrypt(recipients: &[PublicCert], plaintext: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(plaintext.len() + 1024);
    {
        let message = Message::new(&mut out);
        let message = encryptor(recipients, message)?;
        let mut literal = LiteralWriter::new(message).build().map_err(other)?;
        literal.write_all(plaintext).map_err(other)?;
        literal.finalize().map_err(other)?;
    }
    Ok(out)
}

fn encryptor<'a>(recipients: &'a [PublicCert], message: Message<'a>) -> Result<Message<'a>> {
    let mut keys = Vec::new();
    for cert in recipients {
        let valid = cert.0.with_policy(&POLICY, None).map_err(|e| {
            CryptoError::Key(format!("recipient {} is not valid: {e}", cert.describe()))
        })?;
        let before = keys.len();
        keys.extend(
            valid
                .keys()
                .supported()
                .alive()
                .revoked(false)
                .key_flags(encryption_flags()),
        );
        if keys.len() == before {
            return Err(CryptoError::Key(format!(
                "recipient {} has no usable encryption key",
                cert.describe()
            )));
        }
    }
    Encryptor::for_recipients(message, keys)
        .build()
        .map_err(other)
}

/// Signs `plaintext` into a signed (not encrypted) OpenPGP message.
pub fn sign(signer: &SecretKey, plaintext: &[u8]) -> Result<Vec<u8>> {
    signed_message(signer, None, plaintext)
}

/// Signs, then encrypts `plaintext` to the recipients.
pub fn sign_and_encrypt(
    signer: &SecretKey,
    recipients: &[PublicCert],
    plaintext: &[u8],
) -> Result<Vec<u8>> {
    signed_message(signer, Some(recipients), plaintext)
}

fn signed_message(
    signer: &SecretKey,
    recipients: Option<&[PublicCert]>,
    plaintext: &[u8],
) -> Result<Vec<u8>> {
    let keypair = signer.signing_keypair()?;
    let mut out = Vec::with_capacity(plaintext.len() + 1024);
    {
        let mut message = Message::new(&mut out);
        if let Some(recipients) = recipients {
            message = encryptor(recipients, message)?;
        }
        let message = Signer::new(message, keypair)
            .map_err(other)?
            .build()
            .map_err(other)?;
        let mut literal = LiteralWriter::new(message).build().map_err(other)?;
        literal.write_all(plaintext).map_err(other)?;
        literal.finalize().map_err(other)?;
    }
    Ok(out)
}

/// Returns a streaming encryptor: bytes written to it are encrypted to the recipients and
/// passed on to `sink`. Call `finalize` on the returned writer when done.
pub fn encrypting_writer<'a, W: Write + Send + Sync + 'a>(
    recipients: &'a [PublicCert],
    sink: W,
) -> Result<Message<'a>> {
    let message = Message::new(sink);
    let message = encryptor(recipients, message)?;
    LiteralWriter::new(message).build().map_err(other)
}

pub fn finalize(writer: Message<'_>) -> Result<()> {
    writer.finalize().map_err(other)
}

/// Checks the signature of a signed (not encrypted) message and returns its content.
pub fn verify(signer: &PublicCert, message: &[u8]) -> Result<Vec<u8>> {
    let helper = Helper {
        secret: None,
        signer: Some(signer),
    };
    let mut verifier = VerifierBuilder::from_bytes(message)
        .map_err(|e| CryptoError::Signature(e.to_string()))?
        .with_policy(&POLICY, None, helper)
        .map_err(|e| CryptoError::Signature(e.to_string()))?;
    let mut out = Vec::new();
    verifier
        .read_to_end(&mut out)
        .map_err(|e| CryptoError::Signature(e.to_string()))?;
    Ok(out)
}

/// An ASCII-armored detached signature of `data` by the service key: what `sqv` and
/// `gpg --verify` check beside the signed file.
pub fn sign_detached(signer: &SecretKey, data: &[u8]) -> Result<String> {
    use openpgp::armor;
    use openpgp::serialize::stream::Armorer;
    let keypair = signer.signing_keypair()?;
    let mut out = Vec::new();
    {
        let message = Message::new(&mut out);
        let message = Armorer::new(message)
            .kind(armor::Kind::Signature)
            .build()
            .map_err(other)?;
        let mut signer = Signer::new(message, keypair)
            .map_err(other)?
            .detached()
            .build()
            .map_err(other)?;
        signer.write_all(data).map_err(other)?;
        signer.finalize().map_err(other)?;
    }
    String::from_utf8(out).map_err(|e| CryptoError::Other(e.to_string()))
}

/// Checks a detached signature (armored or binary) of `data` by `signer`.
pub fn verify_detached(signer: &PublicCert, data: &[u8], signature: &[u8]) -> Result<()> {
    use openpgp::parse::stream::DetachedVerifierBuilder;
    let helper = Helper {
        secret: None,
        signer: Some(signer),
    };
    let mut verifier = DetachedVerifierBuilder::from_bytes(signature)
        .map_err(|e| CryptoError::Signature(e.to_string()))?
        .with_policy(&POLICY, None, helper)
        .map_err(|e| CryptoError::Signature(e.to_string()))?;
    verifier
        .verify_bytes(data)
        .map_err(|e| CryptoError::Signature(e.to_string()))
}

/// Reads the content of a signed message without checking the signature. Only for finding out
/// which repository a config belongs to before its pinned certificate is known.
pub fn unverified_content(message: &[u8]) -> Result<Vec<u8>> {
    use openpgp::parse::{PacketParser, PacketParserResult};
    let mut ppr = PacketParser::from_bytes(message).map_err(other)?;
    while let PacketParserResult::Some(mut pp) = ppr {
        if let openpgp::Packet::Literal(_) = pp.packet {
            let mut out = Vec::new();
            pp.read_to_end(&mut out).map_err(other)?;
            return Ok(out);
        }
        ppr = pp.recurse().map_err(other)?.1;
    }
    Err(CryptoError::Other("no literal data in message".into()))
}

/// Decrypts a message. With `signer`, the message must also carry a good signature by it.
pub fn decrypt(secret: &SecretKey, signer: Option<&PublicCert>, message: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    decrypt_to(secret, signer, message, &mut out)?;
    Ok(out)
}

/// Decrypts a message, streaming the plaintext into `sink`.
pub fn decrypt_to(
    secret: &SecretKey,
    signer: Option<&PublicCert>,
    message: &[u8],
    sink: &mut dyn Write,
) -> Result<()> {
    let helper = Helper {
        secret: Some(secret),
        signer,
    };
    let mut decryptor = DecryptorBuilder::from_bytes(message)
        .map_err(|e| CryptoError::Decrypt(e.to_string()))?
        .with_policy(&POLICY, None, helper)
        .map_err(classify)?;
    std::io::copy(&mut decryptor, sink).map_err(|e| CryptoError::Decrypt(e.to_string()))?;
    Ok(())
}

fn classify(e: anyhow::Error) -> CryptoError {
    let text = format!("{e:#}");
    if text.contains("signature") || text.contains("Signature") {
        CryptoError::Signature(text)
    } else {
        CryptoError::Decrypt(text)
    }
}

struct Helper<'a> {
    secret: Option<&'a SecretKey>,
    signer: Option<&'a PublicCert>,
}

impl VerificationHelper for Helper<'_> {
    fn get_certs(&mut self, _ids: &[KeyHandle]) -> openpgp::Result<Vec<Cert>> {
        Ok(self.signer.map(|c| vec![c.0.clone()]).unwrap_or_default())
    }

    fn check(&mut self, structure: MessageStructure) -> openpgp::Result<()> {
        let Some(signer) = self.signer else {
            return Ok(());
        };
        for layer in structure {
            if let MessageLayer::SignatureGroup { results } = layer {
                if results.iter().any(|r| r.is_ok()) {
                    return Ok(());
                }
                let reasons: Vec<String> = results
                    .into_iter()
                    .filter_map(|r| r.err())
                    .map(|e| e.to_string())
                    .collect();
                return Err(anyhow::anyhow!(
                    "no good signature by {}: {}",
                    signer.describe(),
                    if reasons.is_empty() {
                        "no signature".to_string()
                    } else {
                        reasons.join("; ")
                    }
                ));
            }
        }
        Err(anyhow::anyhow!(
            "message carries no signature; expected one by {}",
            signer.describe()
        ))
    }
}

impl DecryptionHelper for Helper<'_> {
    fn decrypt(
        &mut self,
        pkesks: &[PKESK],
        _skesks: &[SKESK],
        sym_algo: Option<SymmetricAlgorithm>,
        decrypt: &mut dyn FnMut(Option<SymmetricAlgorithm>, &SessionKey) -> bool,
    ) -> openpgp::Result<Option<Cert>> {
        let Some(secret) = self.secret else {
            return Err(anyhow::anyhow!("no secret key given"));
        };
        for key in secret.0.keys().secret() {
            let fp = key.key().fingerprint();
            let id: KeyHandle = fp.clone().into();
            for pkesk in pkesks {
                let matches = match pkesk.recipient() {
                    Some(handle) => handle.aliases(&id),
                    None => true,
                };
                if !matches {
                    continue;
                }
                let mut pair = SecretKey::unlock(key.key().clone().role_into_unspecified())
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
                if let Some((algo, sk)) = pkesk.decrypt(&mut pair, sym_algo) {
                    if decrypt(algo, &sk) {
                        return Ok(Some(secret.0.clone()));
                    }
                }
            }
        }
        let recipients: Vec<String> = pkesks
            .iter()
            .filter_map(|p| p.recipient().map(|h| h.to_hex()))
            .collect();
        Err(anyhow::anyhow!(
            "key {} is not a recipient of this message (encrypted to keys {})",
            secret.fingerprint(),
            recipients.join(", ")
        ))
    }
}
