//! `shop` as a user meets it: a mistake is one line on stderr and exit
//! code 1 (never a backtrace), a consumer is one of the known names.

use std::process::Command;

fn shop(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_shop")).args(args).env("RUST_BACKTRACE", "1").output().expect("shop runs")
}

#[test]
fn a_user_error_is_one_line_and_exit_code_1_even_with_rust_backtrace_set() {
    let empty = tempfile::tempdir().unwrap();
    let dir = empty.path().to_str().unwrap();
    for args in [vec!["timeline", "nonexistent", "--data-dir", dir], vec!["dump", "--data-dir", dir]] {
        let out = shop(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.starts_with("shop: ") && stderr.contains("start `shop up` first"), "{args:?}: {stderr}");
        assert!(!stderr.to_lowercase().contains("backtrace"), "{args:?}: {stderr}");
    }
}

#[test]
fn a_consumer_is_one_of_the_known_names() {
    let out = shop(&["dlq", "list", "bogus"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("coupon") && stderr.contains("compensation") && stderr.contains("analytics"), "{stderr}");
}

/// No public default secret: `shop token` signs with the data dir's own
/// random secret (a token of one data dir is worthless on another), and
/// `shop env` prints that data dir's credentials for functions beside it.
#[test]
fn tokens_and_credentials_are_the_data_dirs_own() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let token_of = |dir: &std::path::Path| {
        let out = shop(&["token", "--operator", "--data-dir", dir.to_str().unwrap()]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    };
    let token = token_of(a.path());
    let (secrets_a, secrets_b) = (
        shop_local::secrets::Secrets::of_data_dir(a.path()).unwrap(),
        shop_local::secrets::Secrets::of_data_dir(b.path()).unwrap(),
    );
    let now = chrono::Utc::now().timestamp();
    assert!(shop_local::jwt::verify(&secrets_a.jwt_secret, &token, now).is_ok());
    assert!(shop_local::jwt::verify(&secrets_b.jwt_secret, &token, now).is_err(), "another data dir's token");
    assert!(shop_local::jwt::verify(&secrets_a.jwt_secret, &token_of(a.path()), now).is_ok(), "the same key again");

    let out = shop(&["env", "--data-dir", a.path().to_str().unwrap(), "--dynamodb-port", "8000"]);
    let env = String::from_utf8(out.stdout).unwrap();
    for line in [
        format!("export AWS_ACCESS_KEY_ID='{}'", secrets_a.aws_access_key_id),
        format!("export AWS_SECRET_ACCESS_KEY='{}'", secrets_a.aws_secret_access_key),
        format!("export PG_SECRET_KEY='{}'", secrets_a.pg_secret_key),
        "export AWS_ENDPOINT_URL_DYNAMODB='http://127.0.0.1:8000'".to_owned(),
    ] {
        assert!(env.lines().any(|l| l == line), "{line} missing from:\n{env}");
    }
}
