//! The keyring: root keys the servers create (one active at a time, rotated on request) and
//! what they are used for — AES-256-GCM encryption of Variables, and Ed25519 (`EdDSA`) signing
//! of workload identity JWTs, whose public keys are served at `/.well-known/jwks.json` so
//! Vault, Consul or anyone can verify them. Every change goes through the typed apply path.

use super::{Server, ServerError};
use crate::state::keyring::{RootKey, RootKeyMeta, KEY_STATE_ACTIVE};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use caravan_structs::{new_id, time};
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{Ed25519KeyPair, KeyPair, UnparsedPublicKey, ED25519};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

pub const ALGORITHM: &str = "aes256-gcm";
/// The JWT `alg` of workload identities.
pub const SIGNING_ALG: &str = "EdDSA";

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "Op")]
pub enum KeyringCommand {
    Upsert { key: RootKey },
    Delete { key_id: String },
}

pub fn apply(t: &mut crate::state::Tables, index: u64, cmd: &KeyringCommand) {
    match cmd {
        KeyringCommand::Upsert { key } => t.upsert_root_key(index, key.clone()),
        KeyringCommand::Delete { key_id } => t.delete_root_key(index, key_id),
    }
}

fn material(key: &RootKey) -> Result<Vec<u8>, ServerError> {
    STANDARD
        .decode(&key.material)
        .ok()
        .filter(|m| m.len() == 32)
        .ok_or_else(|| ServerError::Internal(format!("root key {} is damaged", key.meta.key_id)))
}

/// The signing key derived from a root key's material.
fn signing_key(key: &RootKey) -> Result<Ed25519KeyPair, ServerError> {
    use sha2::{Digest, Sha256};
    let m = material(key)?;
    let seed = Sha256::new()
        .chain_update(b"caravan-workload-identity\0")
        .chain_update(&m)
        .finalize();
    Ed25519KeyPair::from_seed_unchecked(&seed)
        .map_err(|_| ServerError::Internal("cannot derive the signing key".into()))
}

fn aead(key: &RootKey) -> Result<LessSafeKey, ServerError> {
    let m = material(key)?;
    UnboundKey::new(&AES_256_GCM, &m)
        .map(LessSafeKey::new)
        .map_err(|_| ServerError::Internal("cannot build the encryption key".into()))
}

/// Why a presented JWT is not a valid identity.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum IdentityError {
    #[error("malformed token")]
    Malformed,
    #[error("token signed by an unknown key")]
    UnknownKey,
    #[error("invalid token signature")]
    BadSignature,
    #[error("token expired")]
    Expired,
}

impl Server {
    /// A new active key (the previous one stays, inactive, to decrypt and verify).
    pub fn keyring_rotate(&self) -> Result<RootKeyMeta, ServerError> {
        let mut m = [0u8; 32];
        SystemRandom::new()
            .fill(&mut m)
            .map_err(|_| ServerError::Internal("no randomness for a new root key".into()))?;
        let id = new_id();
        let key = RootKey {
            meta: RootKeyMeta {
                key_id: id.clone(),
                algorithm: ALGORITHM.into(),
                create_time: time::now_nanos(),
                state: KEY_STATE_ACTIVE.into(),
                ..Default::default()
            },
            material: STANDARD.encode(m),
        };
        self.raft_apply(super::command::Command::Keyring(KeyringCommand::Upsert {
            key,
        }));
        self.store
            .snapshot()
            .root_keys
            .get(&id)
            .map(|k| k.meta.clone())
            .ok_or_else(|| ServerError::Internal("new root key is missing".into()))
    }

    /// Creates the first key when the keyring is empty (a new cluster's leader does this).
    pub fn keyring_init(&self) -> Result<(), ServerError> {
        if self.store.snapshot().active_root_key().is_none() {
            let k = self.keyring_rotate()?;
            tracing::info!(key = %k.key_id, "created the cluster's first root key");
        }
        Ok(())
    }

    pub fn keyring_list(&self) -> Vec<RootKeyMeta> {
        let mut v: Vec<RootKeyMeta> = self
            .store
            .snapshot()
            .root_keys
            .values()
            .map(|k| k.meta.clone())
            .collect();
        v.sort_by_key(|m| std::cmp::Reverse(m.create_index));
        v
    }

    pub fn keyring_delete(&self, key_id: &str) -> Result<u64, ServerError> {
        let snap = self.store.snapshot();
        let key = snap
            .root_keys
            .get(key_id)
            .ok_or_else(|| ServerError::NotFound(format!("root key {key_id} not found")))?;
        if key.meta.state == KEY_STATE_ACTIVE {
            return Err(ServerError::BadRequest(
                "active root key cannot be deleted - call rotate first".into(),
            ));
        }
        Ok(
            self.raft_apply(super::command::Command::Keyring(KeyringCommand::Delete {
                key_id: key_id.to_string(),
            })),
        )
    }

    fn active_key(&self) -> Result<std::sync::Arc<RootKey>, ServerError> {
        self.store
            .snapshot()
            .active_root_key()
            .ok_or_else(|| ServerError::Internal("the keyring has no active root key yet".into()))
    }

    /// Encrypts with the active key: its ID and `nonce || ciphertext || tag`.
    pub fn encrypt(&self, plaintext: &[u8]) -> Result<(String, Vec<u8>), ServerError> {
        let key = self.active_key()?;
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| ServerError::Internal("no randomness for a nonce".into()))?;
        let mut buf = plaintext.to_vec();
        aead(&key)?
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::empty(), &mut buf)
            .map_err(|_| ServerError::Internal("encryption failed".into()))?;
        let mut out = nonce.to_vec();
        out.extend(buf);
        Ok((key.meta.key_id.clone(), out))
    }

    pub fn decrypt(&self, key_id: &str, data: &[u8]) -> Result<Vec<u8>, ServerError> {
        let snap = self.store.snapshot();
        let key = snap.root_keys.get(key_id).ok_or_else(|| {
            ServerError::Internal(format!("root key {key_id} is not in the keyring"))
        })?;
        if data.len() < NONCE_LEN {
            return Err(ServerError::Internal("ciphertext too short".into()));
        }
        let (nonce, ct) = data.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce)
            .map_err(|_| ServerError::Internal("bad nonce".into()))?;
        let mut buf = ct.to_vec();
        let plain = aead(key)?
            .open_in_place(nonce, Aad::empty(), &mut buf)
            .map_err(|_| ServerError::Internal("decryption failed".into()))?;
        Ok(plain.to_vec())
    }

    /// A JWT over `claims`, signed by the active key (`kid` names it).
    pub fn sign_identity(&self, claims: &Value) -> Result<String, ServerError> {
        let key = self.active_key()?;
        let header = json!({"alg": SIGNING_ALG, "kid": key.meta.key_id, "typ": "JWT"});
        let enc = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
        let signing_input = format!("{}.{}", enc(&header), enc(claims));
        let sig = signing_key(&key)?.sign(signing_input.as_bytes());
        Ok(format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(sig.as_ref())
        ))
    }

    /// The claims of a JWT this keyring signed, if its signature holds and it has not expired.
    pub fn verify_identity(&self, jwt: &str) -> Result<Value, IdentityError> {
        let mut parts = jwt.split('.');
        let (Some(h), Some(p), Some(sig), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(IdentityError::Malformed);
        };
        let decode = |s: &str| -> Result<Value, IdentityError> {
            let bytes = URL_SAFE_NO_PAD
                .decode(s)
                .map_err(|_| IdentityError::Malformed)?;
            serde_json::from_slice(&bytes).map_err(|_| IdentityError::Malformed)
        };
        let header = decode(h)?;
        if header["alg"] != SIGNING_ALG {
            return Err(IdentityError::Malformed);
        }
        let kid = header["kid"].as_str().ok_or(IdentityError::Malformed)?;
        let snap = self.store.snapshot();
        let key = snap.root_keys.get(kid).ok_or(IdentityError::UnknownKey)?;
        let pair = signing_key(key).map_err(|_| IdentityError::UnknownKey)?;
        let sig = URL_SAFE_NO_PAD
            .decode(sig)
            .map_err(|_| IdentityError::Malformed)?;
        UnparsedPublicKey::new(&ED25519, pair.public_key().as_ref())
            .verify(format!("{h}.{p}").as_bytes(), &sig)
            .map_err(|_| IdentityError::BadSignature)?;
        let claims = decode(p)?;
        let now = time::now_nanos() / 1_000_000_000;
        if claims["exp"].as_i64().is_some_and(|exp| exp <= now) {
            return Err(IdentityError::Expired);
        }
        Ok(claims)
    }

    /// `/.well-known/jwks.json`: every key's public signing key.
    pub fn jwks(&self) -> Value {
        let snap = self.store.snapshot();
        let keys: Vec<Value> = snap
            .root_keys
            .values()
            .filter_map(|k| {
                let pair = signing_key(k).ok()?;
                Some(json!({
                    "kty": "OKP", "crv": "Ed25519", "use": "sig", "alg": SIGNING_ALG,
                    "kid": k.meta.key_id,
                    "x": URL_SAFE_NO_PAD.encode(pair.public_key().as_ref()),
                }))
            })
            .collect();
        json!({ "keys": keys })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::ServerConfig;

    #[tokio::test]
    async fn encrypt_sign_rotate_and_delete() {
        let s = Server::new(ServerConfig::default());
        assert!(s.encrypt(b"x").is_err(), "no key before init");
        s.keyring_init().unwrap();
        let first = s.keyring_list()[0].clone();
        let (kid, blob) = s.encrypt(b"secret value").unwrap();
        assert_eq!(kid, first.key_id);
        assert!(
            !blob.windows(6).any(|w| w == b"secret"),
            "ciphertext hides the text"
        );
        assert_eq!(s.decrypt(&kid, &blob).unwrap(), b"secret value");
        let mut tampered = blob.clone();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        assert!(s.decrypt(&kid, &tampered).is_err());

        let jwt = s
            .sign_identity(&json!({"sub": "global:default:web", "exp": i64::MAX / 2}))
            .unwrap();
        assert_eq!(
            s.verify_identity(&jwt).unwrap()["sub"],
            "global:default:web"
        );
        let mut forged: Vec<&str> = jwt.split('.').collect();
        let other = URL_SAFE_NO_PAD.encode(r#"{"sub":"root"}"#);
        forged[1] = &other;
        assert_eq!(
            s.verify_identity(&forged.join(".")),
            Err(IdentityError::BadSignature)
        );
        let expired = s.sign_identity(&json!({"exp": 1})).unwrap();
        assert_eq!(s.verify_identity(&expired), Err(IdentityError::Expired));

        // Rotation: old data and old tokens still open; the old key can then be deleted.
        let second = s.keyring_rotate().unwrap();
        assert_ne!(second.key_id, first.key_id);
        assert_eq!(s.decrypt(&kid, &blob).unwrap(), b"secret value");
        assert!(s.verify_identity(&jwt).is_ok());
        assert_eq!(s.jwks()["keys"].as_array().unwrap().len(), 2);
        assert!(
            s.keyring_delete(&second.key_id).is_err(),
            "active key stays"
        );
        s.keyring_delete(&first.key_id).unwrap();
        assert_eq!(s.verify_identity(&jwt), Err(IdentityError::UnknownKey));
    }
}
