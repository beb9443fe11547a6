//! Envelope encryption for refund accounts (docs/adr/0030-partial-refunds.md):
//! AES-256-GCM under a data key, a random 96-bit nonce per box, the item's
//! identity as associated data. Where the data key comes from is the
//! [`DataKeys`] implementation:
//!
//! - [`LocalKey`]: one key per data dir (the local stack, tests), derived
//!   from the data dir's secrets, never a default.
//! - `KmsKeys` (feature `kms`, the Lambda functions that seal or open):
//!   KMS `GenerateDataKey` once per container, the encrypted data key stored
//!   with every box it sealed; `Decrypt` once per data key met, cached.
//!
//! Random nonces under one data key stay safe to about 2^32 boxes (NIST SP
//! 800-38D); a local data dir seals one box per virtual-account refund, and
//! a Lambda container draws a new data key at each cold start.

use crate::ports::Sealer;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use shop_store::refund_accounts::Sealed;
use std::sync::Arc;

/// A 256-bit data key.
#[derive(Clone)]
pub struct DataKey(pub [u8; 32]);

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DataKey(<redacted>)")
    }
}

/// Where data keys come from: the one to seal with now (and its
/// reference, stored with the box), and the one a stored reference names.
#[async_trait::async_trait]
pub trait DataKeys: Send + Sync {
    async fn current(&self) -> anyhow::Result<(String, Arc<DataKey>)>;
    async fn named(&self, reference: &str) -> anyhow::Result<Arc<DataKey>>;
}

/// AES-256-GCM boxes under the data keys of `K`.
pub struct Envelope<K>(pub K);

#[async_trait::async_trait]
impl<K: DataKeys> Sealer for Envelope<K> {
    async fn seal(&self, plain: &[u8], context: &[u8]) -> anyhow::Result<Sealed> {
        let (reference, key) = self.0.current().await?;
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).map_err(|e| anyhow::anyhow!("no randomness for a nonce: {e}"))?;
        let mut buf = plain.to_vec();
        aead(&key)?
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(context), &mut buf)
            .map_err(|_| anyhow::anyhow!("sealing failed"))?;
        Ok(Sealed { data_key: reference, nonce: nonce.to_vec(), ciphertext: buf })
    }

    async fn open(&self, sealed: &Sealed, context: &[u8]) -> anyhow::Result<Vec<u8>> {
        let key = self.0.named(&sealed.data_key).await?;
        let nonce = Nonce::try_assume_unique_for_key(&sealed.nonce).map_err(|_| anyhow::anyhow!("bad nonce"))?;
        let mut buf = sealed.ciphertext.clone();
        let plain = aead(&key)?
            .open_in_place(nonce, Aad::from(context), &mut buf)
            .map_err(|_| anyhow::anyhow!("the box does not open: another key, another item, or altered"))?;
        Ok(plain.to_vec())
    }
}

fn aead(key: &DataKey) -> anyhow::Result<LessSafeKey> {
    let unbound = UnboundKey::new(&AES_256_GCM, &key.0).map_err(|_| anyhow::anyhow!("not an AES-256 key"))?;
    Ok(LessSafeKey::new(unbound))
}

/// One key for everything sealed in a data dir.
pub struct LocalKey {
    reference: String,
    key: Arc<DataKey>,
}

impl LocalKey {
    /// The key; its reference names it by a fingerprint, so a box sealed
    /// under another data dir's key says so instead of failing to open.
    pub fn new(key: [u8; 32]) -> LocalKey {
        use sha2::Digest as _;
        let print = hex::encode(sha2::Sha256::digest(key));
        LocalKey { reference: format!("local:{}", print.get(..16).unwrap_or_default()), key: Arc::new(DataKey(key)) }
    }
}

#[async_trait::async_trait]
impl DataKeys for LocalKey {
    async fn current(&self) -> anyhow::Result<(String, Arc<DataKey>)> {
        Ok((self.reference.clone(), self.key.clone()))
    }

    async fn named(&self, reference: &str) -> anyhow::Result<Arc<DataKey>> {
        anyhow::ensure!(reference == self.reference, "sealed under data key {reference}, not this data dir's");
        Ok(self.key.clone())
    }
}

/// No key: an app that was given none refuses to seal or open, and says
/// how to give it one (nothing is ever kept in clear instead).
pub struct NoKey;

#[async_trait::async_trait]
impl Sealer for NoKey {
    async fn seal(&self, _: &[u8], _: &[u8]) -> anyhow::Result<Sealed> {
        anyhow::bail!(
            "no key to seal refund accounts with: set REFUND_ACCOUNT_KEY_ID (a KMS key) or REFUND_ACCOUNT_KEY"
        )
    }

    async fn open(&self, _: &Sealed, _: &[u8]) -> anyhow::Result<Vec<u8>> {
        anyhow::bail!(
            "no key to open refund accounts with: set REFUND_ACCOUNT_KEY_ID (a KMS key) or REFUND_ACCOUNT_KEY"
        )
    }
}

/// Data keys from AWS KMS: `GenerateDataKey` under the key `key_id` once per
/// container, `Decrypt` once per stored data key met. The encryption
/// context names the purpose, so a data key drawn for refund accounts
/// decrypts for nothing else (and KMS's CloudTrail shows what it was for).
#[cfg(feature = "kms")]
pub struct KmsKeys {
    client: aws_sdk_kms::Client,
    key_id: String,
    current: tokio::sync::OnceCell<(String, Arc<DataKey>)>,
    opened: std::sync::Mutex<std::collections::HashMap<String, Arc<DataKey>>>,
}

#[cfg(feature = "kms")]
impl KmsKeys {
    /// Data keys met and kept decrypted; past this the cache starts again
    /// (a container meets one per cold start of the sealing functions).
    const KEPT: usize = 256;

    pub fn new(client: aws_sdk_kms::Client, key_id: String) -> KmsKeys {
        KmsKeys { client, key_id, current: tokio::sync::OnceCell::new(), opened: Default::default() }
    }

    fn plaintext(blob: Option<&aws_sdk_kms::primitives::Blob>) -> anyhow::Result<Arc<DataKey>> {
        let bytes = blob.map(|b| b.as_ref()).unwrap_or_default();
        let key: [u8; 32] =
            bytes.try_into().map_err(|_| anyhow::anyhow!("KMS gave a data key of {} bytes", bytes.len()))?;
        Ok(Arc::new(DataKey(key)))
    }
}

#[cfg(feature = "kms")]
const KMS_CONTEXT: (&str, &str) = ("purpose", "shop-refund-accounts");

#[cfg(feature = "kms")]
#[async_trait::async_trait]
impl DataKeys for KmsKeys {
    async fn current(&self) -> anyhow::Result<(String, Arc<DataKey>)> {
        use base64::Engine as _;
        let drawn = self
            .current
            .get_or_try_init(|| async {
                let out = self
                    .client
                    .generate_data_key()
                    .key_id(&self.key_id)
                    .key_spec(aws_sdk_kms::types::DataKeySpec::Aes256)
                    .encryption_context(KMS_CONTEXT.0, KMS_CONTEXT.1)
                    .send()
                    .await
                    .map_err(|e| {
                        anyhow::anyhow!("KMS GenerateDataKey: {}", aws_sdk_kms::error::DisplayErrorContext(e))
                    })?;
                let wrapped = out.ciphertext_blob().map(|b| b.as_ref()).unwrap_or_default();
                anyhow::ensure!(!wrapped.is_empty(), "KMS GenerateDataKey returned no encrypted key");
                let reference = format!("kms:{}", base64::engine::general_purpose::STANDARD.encode(wrapped));
                let key = Self::plaintext(out.plaintext())?;
                Ok::<_, anyhow::Error>((reference, key))
            })
            .await?;
        Ok(drawn.clone())
    }

    async fn named(&self, reference: &str) -> anyhow::Result<Arc<DataKey>> {
        use base64::Engine as _;
        if let Some(key) = self.opened.lock().map_err(|_| anyhow::anyhow!("data key cache poisoned"))?.get(reference) {
            return Ok(key.clone());
        }
        let wrapped = reference
            .strip_prefix("kms:")
            .ok_or_else(|| anyhow::anyhow!("sealed under data key {reference}, not a KMS one"))?;
        let wrapped = base64::engine::general_purpose::STANDARD.decode(wrapped)?;
        let out = self
            .client
            .decrypt()
            .key_id(&self.key_id)
            .ciphertext_blob(aws_sdk_kms::primitives::Blob::new(wrapped))
            .encryption_context(KMS_CONTEXT.0, KMS_CONTEXT.1)
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("KMS Decrypt: {}", aws_sdk_kms::error::DisplayErrorContext(e)))?;
        let key = Self::plaintext(out.plaintext())?;
        let mut opened = self.opened.lock().map_err(|_| anyhow::anyhow!("data key cache poisoned"))?;
        if opened.len() >= Self::KEPT {
            opened.clear();
        }
        opened.insert(reference.to_owned(), key.clone());
        Ok(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_box_opens_only_with_its_key_and_its_context() {
        let sealer = Envelope(LocalKey::new([7; 32]));
        let sealed = sealer.seal(b"88/1101234567/hong", b"ORDER#o1/REFUNDACCOUNT#1").await.unwrap();
        assert!(!sealed.ciphertext.windows(10).any(|w| w == b"1101234567"), "the number is not in the box in clear");
        assert_eq!(sealer.open(&sealed, b"ORDER#o1/REFUNDACCOUNT#1").await.unwrap(), b"88/1101234567/hong");
        assert!(sealer.open(&sealed, b"ORDER#o2/REFUNDACCOUNT#1").await.is_err(), "moved to another item");
        let other = Envelope(LocalKey::new([8; 32]));
        assert!(other.open(&sealed, b"ORDER#o1/REFUNDACCOUNT#1").await.is_err(), "another data dir's key");
        let mut altered = sealed.clone();
        if let Some(b) = altered.ciphertext.first_mut() {
            *b ^= 1;
        }
        assert!(sealer.open(&altered, b"ORDER#o1/REFUNDACCOUNT#1").await.is_err(), "altered");
        let again = sealer.seal(b"88/1101234567/hong", b"ORDER#o1/REFUNDACCOUNT#1").await.unwrap();
        assert_ne!(again.nonce, sealed.nonce, "a fresh nonce per box");
        assert!(NoKey.seal(b"x", b"y").await.is_err());
    }
}
