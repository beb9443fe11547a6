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

/// A command that changes state names who runs it and why, before it does
/// anything, and `shop audit` lists it.
#[test]
fn a_command_that_acts_names_its_operator_and_reason_and_shop_audit_lists_it() {
    let data = tempfile::tempdir().unwrap();
    let dir = data.path().to_str().unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        shop_local::open(Some(data.path()), Default::default(), None, None).await.expect("a data dir with a store");
    });
    let redrive = ["dlq", "redrive", "analytics", "--data-dir", dir];
    let out = shop(&[&redrive[..], &["--reason", "platform back"]].concat());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("--operator"), "{stderr}");
    let out = shop(&[&redrive[..], &["--operator", "ana"]].concat());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "a reason is required: {stderr}");
    assert!(stderr.contains("--reason"), "{stderr}");
    let out = shop(&[&redrive[..], &["--operator", "ana", "--reason", "  "]].concat());
    assert_eq!(out.status.code(), Some(1), "a blank reason: {}", String::from_utf8_lossy(&out.stderr));
    let listed = || {
        let out = shop(&["audit", "--data-dir", dir, "--json"]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    assert_eq!(listed()["entries"].as_array().unwrap().len(), 0, "nothing refused was recorded");

    let out = shop(&[&redrive[..], &["--operator", "ana", "--reason", "the data platform is back"]].concat());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let entries = listed()["entries"].clone();
    let e = &entries[0];
    assert_eq!(
        (e["operator"].as_str(), e["channel"].as_str(), e["stack"].as_str(), e["action"].as_str()),
        (Some("ana"), Some("cli"), Some("local"), Some("dlq.redrive")),
        "{e}"
    );
    assert_eq!(
        (e["reason"].as_str(), e["status"].as_str()),
        (Some("the data platform is back"), Some("SUCCEEDED")),
        "{e}"
    );
    assert_eq!(e["targets"][0], "queue:analytics-dlq", "{e}");
    assert!(e["outcome"].as_str().unwrap().contains("0 message(s) moved"), "{e}");
}

/// `shop orders` and `shop bulk` take the finder's filters: a filter that
/// is none names its key; a dry run needs no reason and changes nothing;
/// a bulk action with nothing to act on says so and records nothing.
#[test]
fn shop_orders_and_shop_bulk_take_the_finders_filters() {
    let data = tempfile::tempdir().unwrap();
    let dir = data.path().to_str().unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        shop_local::open(Some(data.path()), Default::default(), None, None).await.expect("a data dir with a store");
    });
    let out = shop(&["orders", "--data-dir", dir, "--filter", "stuck=sideways"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("filter stuck") && stderr.contains("dead-lettered"), "{stderr}");
    let out = shop(&[
        "orders",
        "--data-dir",
        dir,
        "--filter",
        "stuck=dead-lettered",
        "--filter",
        "consumer=analytics",
        "--json",
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["orders"], serde_json::json!([]), "{doc}");
    assert!(doc["readFrom"].as_str().unwrap().contains("dead-lettered"), "{doc}");
    let out = shop(&["orders", "--data-dir", dir, "--csv"]);
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("orderId,status,userId"));
    let bulk = ["bulk", "redrive", "--data-dir", dir, "--filter", "stuck=dead-lettered"];
    let out = shop(&[&bulk[..], &["--dry-run", "--json"]].concat());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((plan["action"].as_str(), plan["targets"].as_array().map(Vec::len)), (Some("redrive"), Some(0)));
    let out = shop(&[&bulk[..], &["--operator", "ana", "--reason", "drill"]].concat());
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nothing to redrive"));
    let audit = shop(&["audit", "--data-dir", dir, "--json"]);
    let audit: serde_json::Value = serde_json::from_slice(&audit.stdout).unwrap();
    assert_eq!(audit["entries"], serde_json::json!([]), "nothing done, nothing recorded");
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

/// The docs tell the truth about the command line: every `shop …` command
/// quoted in the README and docs/ (code spans and code blocks; the ADRs are
/// a record of their day and left alone) exists, and so does every `--flag`
/// quoted with it.
#[test]
fn every_shop_command_and_flag_the_docs_quote_exists() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut files = vec![root.join("README.md")];
    for entry in std::fs::read_dir(root.join("docs")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "md") {
            files.push(path);
        }
    }
    let mut quoted: std::collections::BTreeMap<Vec<String>, std::collections::BTreeSet<String>> = Default::default();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        for code in code_of(&text) {
            for (command, flags) in shop_invocations(&code) {
                quoted.entry(command).or_default().extend(flags);
            }
        }
    }
    assert!(quoted.len() > 10, "the docs quote shop's commands: {quoted:?}");
    let mut help_of: std::collections::BTreeMap<Vec<String>, String> = Default::default();
    let mut wrong = Vec::new();
    for (command, flags) in &quoted {
        // `dlq list`: a subcommand if `shop dlq --help` lists it, else an argument.
        let mut words = vec![command[0].clone()];
        let top = help_of.entry(words.clone()).or_insert_with(|| help(&words)).clone();
        if let Some(sub) = command.get(1)
            && top.contains("Commands:")
            && top.lines().any(|l| l.trim_start().starts_with(&format!("{sub} ")) || l.trim() == sub)
        {
            words.push(sub.clone());
        }
        let text = help_of.entry(words.clone()).or_insert_with(|| help(&words)).clone();
        if text.is_empty() {
            wrong.push(format!("`shop {}` is no command", words.join(" ")));
            continue;
        }
        for flag in flags {
            if !text.contains(&format!("{flag} "))
                && !text.contains(&format!("{flag},"))
                && !text.contains(&format!("{flag}\n"))
            {
                wrong.push(format!("`shop {} {flag}`: no such option", words.join(" ")));
            }
        }
    }
    assert!(wrong.is_empty(), "the docs quote what shop does not have:\n{}", wrong.join("\n"));
}

/// `shop <words> --help`, or "" if shop refuses it.
fn help(words: &[String]) -> String {
    let mut args: Vec<&str> = words.iter().map(String::as_str).collect();
    // `shop help` is clap's own: it prints the help, and takes no --help.
    if args != ["help"] {
        args.push("--help");
    }
    let out = shop(&args);
    if out.status.success() { String::from_utf8_lossy(&out.stdout).into_owned() } else { String::new() }
}

/// The code of a Markdown text: its code spans and fenced blocks.
fn code_of(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut in_block = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            in_block = !in_block;
            continue;
        }
        if in_block {
            out.push(line.to_owned());
            continue;
        }
        out.extend(line.split('`').skip(1).step_by(2).map(str::to_owned));
    }
    out
}

/// Each `shop <command> [<sub>] --flags…` in a piece of code: the command
/// words and the flags.
fn shop_invocations(code: &str) -> Vec<(Vec<String>, Vec<String>)> {
    let tokens: Vec<&str> = code.split_whitespace().collect();
    let mut found = Vec::new();
    for (i, token) in tokens.iter().enumerate() {
        if !(*token == "shop" || token.ends_with("/shop")) {
            continue;
        }
        let mut rest = tokens.iter().skip(i + 1).copied().peekable();
        if rest.peek() == Some(&"--") {
            rest.next();
        }
        let Some(command) =
            rest.next().filter(|c| c.chars().all(|ch| ch.is_ascii_lowercase() || ch == '-') && !c.starts_with('-'))
        else {
            continue;
        };
        let mut words = vec![command.to_owned()];
        let mut flags = Vec::new();
        for t in rest {
            if t == "shop" || t.ends_with("/shop") || t == "|" || t == "&&" || t == ";" || t == "&" {
                break;
            }
            let bare = t.trim_start_matches(['[', '(', '"']);
            if let Some(flag) = bare.strip_prefix("--") {
                let name: String =
                    flag.chars().take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-').collect();
                if !name.is_empty() {
                    flags.push(format!("--{name}"));
                }
            } else if words.len() == 1
                && flags.is_empty()
                && bare.chars().all(|c| c.is_ascii_lowercase() || c == '-')
                && !bare.is_empty()
            {
                words.push(bare.to_owned());
            }
        }
        found.push((words, flags));
    }
    found
}
