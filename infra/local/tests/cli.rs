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
