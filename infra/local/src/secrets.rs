//! The local stack's secrets, random per data dir: the key its JWTs are
//! signed with, the PG simulator's secret key, and the credentials its
//! DynamoDB port verifies SigV4 signatures against. None of them has a
//! public default: a web page or another user of the machine cannot mint
//! an operator token or sign a store call for a stack it has not read the
//! secrets of.
//!
//! They live in `<data-dir>/secrets.json`, created on first use with mode
//! 0600 (and refused when others may read it). `shop up` and every command
//! beside it (`shop token`, `shop env`) read the same file; a stack without
//! a data dir (tests) draws fresh ones ([`Secrets::random`]).

use anyhow::Context as _;
use std::path::Path;

/// The file, beside the store in the data dir.
pub const FILE: &str = "secrets.json";

/// One data dir's secrets.
#[derive(Clone, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Secrets {
    /// Signs and verifies the stack's JWTs (HS256).
    pub jwt_secret: String,
    /// The PG simulator's secret key (Toss's `test_sk_…` shape); the stack's
    /// PG client sends it as Basic auth.
    pub pg_secret_key: String,
    /// The DynamoDB port's access key id and secret access key (SigV4).
    pub aws_access_key_id: String,
    pub aws_secret_access_key: String,
}

// Secrets are never printed by accident.
impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Secrets").field("aws_access_key_id", &self.aws_access_key_id).finish_non_exhaustive()
    }
}

impl Secrets {
    /// The key the waiting room's admission tokens are signed with
    /// (`ADMISSION_SECRET`): derived from the JWT key for its one purpose
    /// (HMAC-SHA256 of a fixed label), so a data dir written before sales
    /// existed has one too and a token cannot stand for a JWT.
    pub fn admission_secret(&self) -> String {
        use hmac::Mac as _;
        let Ok(mut mac) = <hmac::Hmac<sha2::Sha256> as hmac::Mac>::new_from_slice(self.jwt_secret.as_bytes()) else {
            unreachable!("HMAC takes a key of any length")
        };
        mac.update(b"shop admission tokens v1");
        hex::encode(mac.finalize().into_bytes())
    }

    /// The key refund accounts are sealed with (AES-256-GCM;
    /// `REFUND_ACCOUNT_KEY`): derived from the JWT key for its one purpose,
    /// as the admission secret is, so every data dir has its own and one
    /// written before refund accounts existed has one too.
    pub fn refund_account_key(&self) -> [u8; 32] {
        use hmac::Mac as _;
        let Ok(mut mac) = <hmac::Hmac<sha2::Sha256> as hmac::Mac>::new_from_slice(self.jwt_secret.as_bytes()) else {
            unreachable!("HMAC takes a key of any length")
        };
        mac.update(b"shop refund accounts v1");
        mac.finalize().into_bytes().into()
    }

    /// Fresh secrets from the operating system's generator.
    pub fn random() -> anyhow::Result<Secrets> {
        Ok(Secrets {
            jwt_secret: random_hex(32)?,
            pg_secret_key: format!("test_sk_{}", random_hex(16)?),
            aws_access_key_id: format!("SHOPLOCAL{}", random_hex(6)?.to_ascii_uppercase()),
            aws_secret_access_key: random_hex(20)?,
        })
    }

    /// The data dir's secrets, created (0600) if it has none yet. Two
    /// processes starting together agree: the file is published whole by a
    /// hard link, which fails if another got there first.
    pub fn of_data_dir(dir: &Path) -> anyhow::Result<Secrets> {
        let path = dir.join(FILE);
        match read(&path) {
            Ok(Some(s)) => return Ok(s),
            Ok(None) => {}
            Err(e) => return Err(e),
        }
        std::fs::create_dir_all(dir).with_context(|| format!("creating the data dir {}", dir.display()))?;
        let fresh = Secrets::random()?;
        // A name of its own: not another thread's, nor one a killed run left.
        let staged = dir.join(format!(".{FILE}.{}", random_hex(8)?));
        write_private(&staged, &serde_json::to_vec_pretty(&fresh)?)?;
        let linked = std::fs::hard_link(&staged, &path);
        let _ = std::fs::remove_file(&staged);
        match linked {
            Ok(()) => Ok(fresh),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                read(&path)?.with_context(|| format!("{} vanished", path.display()))
            }
            Err(e) => Err(e).with_context(|| format!("creating {}", path.display())),
        }
    }
}

/// The secrets in `path`, `None` if there is no such file.
fn read(path: &Path) -> anyhow::Result<Option<Secrets>> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(path)?.permissions().mode() & 0o777;
        anyhow::ensure!(
            mode & 0o077 == 0,
            "{} may be read by other users (mode {mode:o}): `chmod 600 {}`",
            path.display(),
            path.display()
        );
    }
    serde_json::from_slice(&bytes).map(Some).with_context(|| format!("{} is not the stack's secrets", path.display()))
}

fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(path).with_context(|| format!("creating {}", path.display()))?;
    file.write_all(bytes)?;
    file.sync_all()?;
    Ok(())
}

/// `bytes` random bytes from the operating system, in hex.
pub fn random_hex(bytes: usize) -> anyhow::Result<String> {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).map_err(|e| anyhow::anyhow!("no randomness from the operating system: {e}"))?;
    Ok(hex::encode(buf))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_data_dir_keeps_its_own_private_secrets() {
        let dir = tempfile::tempdir().unwrap();
        let first = Secrets::of_data_dir(dir.path()).unwrap();
        let again = Secrets::of_data_dir(dir.path()).unwrap();
        assert_eq!(first.jwt_secret, again.jwt_secret, "read back, not drawn again");
        assert_eq!(first.aws_secret_access_key, again.aws_secret_access_key);
        let other = Secrets::of_data_dir(tempfile::tempdir().unwrap().path()).unwrap();
        assert_ne!(first.jwt_secret, other.jwt_secret);
        assert_ne!(first.pg_secret_key, other.pg_secret_key);
        assert!(first.pg_secret_key.starts_with("test_sk_") && first.jwt_secret.len() == 64);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let path = dir.path().join(FILE);
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
            let refused = Secrets::of_data_dir(dir.path()).unwrap_err().to_string();
            assert!(refused.contains("chmod 600"), "{refused}");
        }
        assert!(!format!("{first:?}").contains(&first.jwt_secret), "Debug hides the secrets");
        assert_eq!(first.refund_account_key(), again.refund_account_key());
        assert_ne!(first.refund_account_key(), other.refund_account_key(), "a key per data dir");
    }
}
