//! The SAM template (infra/template.yaml) against the single sources the
//! local stack runs on: a test fails if a route, a rule pattern or a
//! function differs between them, or if the template breaks a project rule
//! (every async path has a DLQ or OnFailure, every function its log group,
//! no `*` resource in a role), or if a function would be built other than
//! as infra/Makefile builds it (the `lambda` profile, its own features).

use serde_yaml::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn template() -> Value {
    let text = std::fs::read_to_string(root().join("infra/template.yaml")).expect("infra/template.yaml");
    serde_yaml::from_str(&text).expect("template parses")
}

fn resources(t: &Value) -> Vec<(String, Value)> {
    t["Resources"]
        .as_mapping()
        .expect("Resources")
        .iter()
        .map(|(k, v)| (k.as_str().unwrap_or_default().to_owned(), v.clone()))
        .collect()
}

fn of_type(t: &Value, ty: &str) -> Vec<(String, Value)> {
    resources(t).into_iter().filter(|(_, r)| r["Type"].as_str() == Some(ty)).collect()
}

/// `!Ref X` / `!GetAtt X.Arn` → "X".
fn reference(v: &Value) -> Option<String> {
    match v {
        Value::Tagged(t) => t.value.as_str().map(|s| s.split('.').next().unwrap_or(s).to_owned()),
        _ => None,
    }
}

fn to_json(v: &Value) -> serde_json::Value {
    serde_json::to_value(v).expect("yaml to json")
}

#[test]
fn routes_match_the_local_stack() {
    let t = template();
    let mut in_template = BTreeSet::new();
    for (logical, f) in of_type(&t, "AWS::Serverless::Function") {
        let binary = package_of(&logical);
        for (_, ev) in f["Properties"]["Events"].as_mapping().into_iter().flatten() {
            if ev["Type"].as_str() == Some("HttpApi") {
                let p = &ev["Properties"];
                let authorized = p["Auth"]["Authorizer"].as_str() != Some("NONE");
                in_template.insert((
                    p["Method"].as_str().unwrap_or_default().to_owned(),
                    p["Path"].as_str().unwrap_or_default().to_owned(),
                    binary.clone(),
                    authorized,
                ));
            }
        }
    }
    let local: BTreeSet<_> = shop_app::http::routes::ROUTES
        .iter()
        .map(|r| (r.method.to_owned(), r.path.to_owned(), r.function.to_owned(), r.authorized))
        .collect();
    assert_eq!(in_template, local, "routes drifted; run python3 infra/scripts/gen-template.py");
}

#[test]
fn rule_patterns_match_the_local_bus() {
    let t = template();
    let rules = shop_local::emulate::rules::rules().unwrap();
    let template_rules = of_type(&t, "AWS::Events::Rule");
    assert_eq!(template_rules.len(), rules.rules.len());
    // One rule per consumer, and a consumer per rule: names are declared once.
    let in_rules: BTreeSet<&str> = rules.rules.iter().map(|r| r.consumer.as_str()).collect();
    let declared: BTreeSet<&str> = shop_app::events::consumers::NAMES.into_iter().collect();
    assert_eq!(in_rules, declared, "events/rules.json and shop_app::events::consumers::NAMES drifted");
    for rule in &rules.rules {
        let logical = format!("{}Rule", camel(&rule.consumer));
        let (_, r) = template_rules.iter().find(|(k, _)| *k == logical).unwrap_or_else(|| panic!("no {logical}"));
        assert_eq!(to_json(&r["Properties"]["EventPattern"]), rule.pattern, "{logical} pattern drifted");
        // Its target is the consumer's queue, and the consumer's function reads that queue.
        let target = &r["Properties"]["Targets"][0];
        assert_eq!(reference(&target["Arn"]).as_deref(), Some(format!("{}Queue", camel(&rule.consumer)).as_str()));
    }
}

fn camel(s: &str) -> String {
    s.split('-').map(|p| p[..1].to_uppercase() + &p[1..]).collect()
}

/// A function's package (and binary) from its logical id, as infra/Makefile
/// derives it for `sam build`: CreateOrderFunction -> create-order.
fn package_of(logical: &str) -> String {
    let mut out = String::new();
    let stem = logical.strip_suffix("Function").unwrap_or(logical);
    for (i, c) in stem.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('-');
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

fn function_dirs() -> BTreeSet<String> {
    std::fs::read_dir(root().join("functions"))
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

/// Every function package is in the template, built by infra/Makefile (the
/// `lambda` profile, one package at a time), never by SAM's Rust builder,
/// which builds with the release profile and the workspace's features.
#[test]
fn every_function_binary_is_in_the_template() {
    let t = template();
    let functions = of_type(&t, "AWS::Serverless::Function");
    let in_template: BTreeSet<String> = functions.iter().map(|(logical, _)| package_of(logical)).collect();
    assert_eq!(in_template, function_dirs());
    for (name, f) in functions {
        assert_eq!(f["Metadata"]["BuildMethod"].as_str(), Some("makefile"), "{name}");
        assert_eq!(f["Metadata"]["ContextPath"].as_str(), Some("."), "{name}: infra/Makefile");
        assert_eq!(f["Properties"]["CodeUri"].as_str(), Some(".."), "{name}: the workspace");
    }
    let makefile = std::fs::read_to_string(root().join("infra/Makefile")).unwrap();
    assert!(makefile.contains("build-%Function:"), "infra/Makefile builds every function by one rule");
    assert!(makefile.contains("cargo lambda build --locked --profile lambda $(ARCH_FLAG) -p $(PACKAGE)"));
}

/// Only the functions that call the PG read its secret, and only those
/// that sign or check admission tokens read the admission secret, so only
/// they compile and link the SSM client (the `ssm` feature); only those
/// that seal or open refund accounts link the KMS client (`kms`); `shop`
/// never does either.
#[test]
fn only_the_functions_that_need_a_secret_build_their_app_with_it() {
    for name in function_dirs() {
        let dir = root().join("functions").join(&name);
        let main = std::fs::read_to_string(dir.join("src/main.rs")).unwrap();
        let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
        let pg = shop_app::http::routes::PG_FUNCTIONS.contains(&name.as_str());
        let admission = shop_app::http::routes::ADMISSION_FUNCTIONS.contains(&name.as_str());
        assert_eq!(
            main.contains("pg_app_from_env("),
            pg,
            "{name}: pg_app_from_env iff it is one of routes::PG_FUNCTIONS"
        );
        assert_eq!(
            main.contains("admission_app_from_env("),
            admission,
            "{name}: admission_app_from_env iff it is one of routes::ADMISSION_FUNCTIONS"
        );
        let live = shop_app::http::routes::LIVE_FUNCTIONS.contains(&name.as_str());
        let kms = shop_app::http::routes::SEALING_FUNCTIONS.contains(&name.as_str())
            || shop_app::http::routes::OPENING_FUNCTIONS.contains(&name.as_str());
        assert_eq!(
            main.contains("with_refund_accounts("),
            kms,
            "{name}: with_refund_accounts iff it seals or opens refund accounts"
        );
        let features = match (pg || admission, live, kms) {
            (true, false, false) => r#"features = ["ssm"]"#,
            (true, false, true) => r#"features = ["ssm", "kms"]"#,
            (false, false, true) => r#"features = ["kms"]"#,
            (false, true, false) => r#"features = ["live"]"#,
            (false, false, false) => r#"features = ["aws"]"#,
            (_, true, _) => panic!("{name}: the pushes and another client: give it both features and this test a case"),
        };
        assert!(manifest.contains(features), "{name}: shop-app with {features}");
        assert_eq!(
            main.contains("ApiGatewayPusher::from_env("),
            live,
            "{name}: pushes to the WebSocket API iff it is one of routes::LIVE_FUNCTIONS"
        );
    }
    let local = std::fs::read_to_string(root().join("infra/local/Cargo.toml")).unwrap();
    assert!(
        !local.contains("\"ssm\"") && !local.contains("\"live\"") && !local.contains("\"kms\""),
        "shop never reads SSM, pushes through AWS nor calls KMS"
    );
}

/// Cargo.toml's tables (`[profile.release.package."*"]` → its `key = value`
/// lines, values as written): enough for our own manifest's profiles.
fn manifest_tables() -> BTreeMap<String, BTreeMap<String, String>> {
    let text = std::fs::read_to_string(root().join("Cargo.toml")).unwrap();
    let mut tables = BTreeMap::<String, BTreeMap<String, String>>::new();
    let mut current = String::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
        if let Some(header) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            current = header.replace('"', "");
            tables.entry(current.clone()).or_default();
        } else if let Some((key, value)) = line.split_once('=') {
            tables.entry(current.clone()).or_default().insert(key.trim().to_owned(), value.trim().to_owned());
        }
    }
    tables
}

/// The `lambda` profile inherits release's per-package settings (cargo does
/// that for custom profiles): each one release sets is set back to the size
/// profile, or a Lambda dependency would be built for the local stack.
#[test]
fn the_lambda_profile_takes_back_every_release_override() {
    let tables = manifest_tables();
    let lambda = &tables["profile.lambda"];
    for (key, value) in
        [("inherits", "\"release\""), ("opt-level", "\"z\""), ("lto", "\"fat\""), ("codegen-units", "1")]
    {
        assert_eq!(lambda.get(key).map(String::as_str), Some(value), "profile.lambda.{key}");
    }
    let overrides: Vec<_> =
        tables.iter().filter_map(|(t, kv)| Some((t.strip_prefix("profile.release.package.")?, kv))).collect();
    assert!(!overrides.is_empty());
    for (package, settings) in overrides {
        let back = tables.get(&format!("profile.lambda.package.{package}"));
        for key in settings.keys() {
            let value = back.and_then(|b| b.get(key)).map(String::as_str);
            assert!(
                value.is_some(),
                "profile.lambda.package.{package}.{key} is not set: functions would inherit release's"
            );
            if key == "opt-level" {
                assert_eq!(value, Some("\"z\""), "profile.lambda.package.{package}");
            }
        }
    }
}

#[test]
fn project_rules_hold() {
    let t = template();
    let all = resources(&t);
    let find = |name: &str| all.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    for (name, f) in of_type(&t, "AWS::Serverless::Function") {
        // A log group with retention.
        let group =
            reference(&f["Properties"]["LoggingConfig"]["LogGroup"]).unwrap_or_else(|| panic!("{name}: no log group"));
        let lg = find(&group).unwrap_or_else(|| panic!("{name}: {group} missing"));
        assert!(!lg["Properties"]["RetentionInDays"].is_null(), "{name}: log retention");
        // Every async path has a DLQ or an OnFailure destination.
        for (ev_name, ev) in f["Properties"]["Events"].as_mapping().into_iter().flatten() {
            match ev["Type"].as_str() {
                Some("DynamoDB") => {
                    let p = &ev["Properties"];
                    assert!(
                        !p["DestinationConfig"]["OnFailure"]["Destination"].is_null(),
                        "{name} {ev_name:?}: OnFailure"
                    );
                    assert_eq!(p["BisectBatchOnFunctionError"].as_bool(), Some(true));
                    assert!(
                        p["FunctionResponseTypes"]
                            .as_sequence()
                            .is_some_and(|s| s.iter().any(|x| x == "ReportBatchItemFailures"))
                    );
                }
                Some("SQS") => {
                    let queue = reference(&ev["Properties"]["Queue"]).expect("queue ref");
                    let q = find(&queue).expect("queue");
                    assert!(
                        !q["Properties"]["RedrivePolicy"]["deadLetterTargetArn"].is_null(),
                        "{queue}: redrive to a DLQ"
                    );
                    assert!(
                        ev["Properties"]["FunctionResponseTypes"]
                            .as_sequence()
                            .is_some_and(|s| s.iter().any(|x| x == "ReportBatchItemFailures"))
                    );
                }
                _ => {}
            }
        }
        // No bare "*" resource in a role; the PG secret is readable only by
        // the functions told its parameter name, and never passed in plain text.
        let env = &f["Properties"]["Environment"]["Variables"];
        let binary = package_of(&name);
        let routes = shop_app::http::routes::ROUTES.iter().filter(|r| r.function == binary);
        let read_only = routes.clone().count() > 0 && routes.clone().all(|r| r.method == "GET");
        let mut writes = false;
        assert!(env["PG_SECRET_KEY"].is_null(), "{name}: PG secret in plain text");
        let mut reads_ssm = false;
        let mut manages_connections = false;
        let mut kms_actions: Vec<String> = Vec::new();
        for statement in f["Properties"]["Policies"].as_sequence().into_iter().flatten() {
            for s in statement["Statement"].as_sequence().into_iter().flatten() {
                let resources = match &s["Resource"] {
                    Value::Sequence(v) => v.clone(),
                    other => vec![other.clone()],
                };
                assert!(!resources.iter().any(|r| r.as_str() == Some("*")), "{name}: * resource");
                let actions = match &s["Action"] {
                    Value::Sequence(v) => v.clone(),
                    other => vec![other.clone()],
                };
                if actions.iter().any(|a| a.as_str() == Some("events:PutEvents")) {
                    assert_eq!(
                        s["Condition"]["StringEquals"]["events:source"].as_str(),
                        Some(shop_domain::envelope::SOURCE),
                        "{name}: PutEvents must be conditioned on events:source"
                    );
                }
                let kms: Vec<String> = actions
                    .iter()
                    .filter_map(|a| a.as_str())
                    .filter(|a| a.starts_with("kms:"))
                    .map(str::to_owned)
                    .collect();
                if !kms.is_empty() {
                    assert_eq!(
                        s["Condition"]["StringEquals"]["kms:EncryptionContext:purpose"].as_str(),
                        Some("shop-refund-accounts"),
                        "{name}: KMS use must be bound to the refund accounts' encryption context"
                    );
                    assert_eq!(reference(&s["Resource"]).as_deref(), Some("RefundAccountKey"), "{name}: KMS key");
                }
                kms_actions.extend(kms);
                reads_ssm |= actions.iter().any(|a| a.as_str().is_some_and(|a| a.starts_with("ssm:")));
                manages_connections |= actions.iter().any(|a| a.as_str() == Some("execute-api:ManageConnections"));
                writes |= actions.iter().any(|a| {
                    a.as_str().is_some_and(|a| {
                        [
                            "dynamodb:PutItem",
                            "dynamodb:UpdateItem",
                            "dynamodb:DeleteItem",
                            "dynamodb:ConditionCheckItem",
                        ]
                        .contains(&a)
                    })
                });
            }
        }
        assert_eq!(
            reads_ssm,
            !env["PG_SECRET_KEY_PARAMETER"].is_null() || !env["ADMISSION_SECRET_PARAMETER"].is_null(),
            "{name}: ssm access iff it reads the PG secret or the admission secret"
        );
        assert_eq!(
            !env["ADMISSION_SECRET_PARAMETER"].is_null(),
            shop_app::http::routes::ADMISSION_FUNCTIONS.contains(&binary.as_str()),
            "{name}: gets the admission secret's parameter iff it is one of routes::ADMISSION_FUNCTIONS"
        );
        assert_eq!(
            !env["PG_SECRET_KEY_PARAMETER"].is_null(),
            shop_app::http::routes::PG_FUNCTIONS.contains(&binary.as_str()),
            "{name}: gets the PG secret's parameter iff it is one of routes::PG_FUNCTIONS"
        );
        let live = shop_app::http::routes::LIVE_FUNCTIONS.contains(&binary.as_str());
        assert_eq!(
            (manages_connections, !env["LIVE_ENDPOINT"].is_null()),
            (live, live),
            "{name}: the WebSocket API's endpoint and ManageConnections iff it is one of routes::LIVE_FUNCTIONS"
        );
        assert!(!(read_only && writes), "{name}: serves only GET routes, so its role must not write the table");
        let seals = shop_app::http::routes::SEALING_FUNCTIONS.contains(&binary.as_str());
        let opens = shop_app::http::routes::OPENING_FUNCTIONS.contains(&binary.as_str());
        let wanted: Vec<String> = match (seals, opens) {
            (true, false) => vec!["kms:GenerateDataKey".into()],
            (false, true) => vec!["kms:Decrypt".into()],
            (false, false) => vec![],
            (true, true) => vec!["kms:GenerateDataKey".into(), "kms:Decrypt".into()],
        };
        assert_eq!(kms_actions, wanted, "{name}: one KMS action each, only to the functions that seal or open");
        assert_eq!(
            !env["REFUND_ACCOUNT_KEY_ID"].is_null(),
            seals || opens,
            "{name}: the refund accounts' key iff it seals or opens them"
        );
    }
    for (name, r) in of_type(&t, "AWS::Events::Rule") {
        for target in r["Properties"]["Targets"].as_sequence().into_iter().flatten() {
            assert!(!target["DeadLetterConfig"]["Arn"].is_null(), "{name}: target DLQ");
        }
    }
    // The table the store creates locally is the table the template
    // declares, and the local stream emulation's pending index (docs/adr/0024).
    let table = find("Table").expect("Table");
    let mut indexes: Vec<String> = table["Properties"]["GlobalSecondaryIndexes"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|g| g["IndexName"].as_str().unwrap_or_default().to_owned())
        .collect();
    indexes.sort();
    assert_eq!(indexes, vec![shop_store::keys::GSI_DUE, shop_store::keys::GSI_USER]);
    // Each index projects what the store's table does; a projection given
    // as a parameter (byUser's, for stacks made before it was keys-only)
    // defaults to it.
    for g in table["Properties"]["GlobalSecondaryIndexes"].as_sequence().unwrap() {
        let name = g["IndexName"].as_str().unwrap_or_default();
        let declared = &g["Projection"]["ProjectionType"];
        let projected = match reference(declared) {
            Some(param) => t["Parameters"][param.as_str()]["Default"].as_str().unwrap_or_default().to_owned(),
            None => declared.as_str().unwrap_or_default().to_owned(),
        };
        let wanted = shop_store::schema::PROJECTIONS.iter().find(|(n, _)| *n == name).map(|(_, p)| *p);
        assert_eq!(Some(projected.as_str()), wanted, "{name}: the template's projection is the store's");
    }
    assert_eq!(
        table["Properties"]["TimeToLiveSpecification"]["AttributeName"].as_str(),
        Some(shop_store::schema::TTL_ATTRIBUTE)
    );
}

/// The outbox's names in the template are the store codec's: the stream
/// filter that lets only outbox items as written (or republished) reach the
/// publisher. The pending index is the local stream emulation's: AWS has
/// its stream and no such index (docs/adr/0024).
#[test]
fn the_stream_filter_is_the_codecs_and_aws_has_no_pending_index() {
    use shop_store::outbox::codec;
    let t = template();
    let table = resources(&t).into_iter().find(|(n, _)| n == "Table").map(|(_, r)| r).expect("Table");
    let names: Vec<&str> = table["Properties"]["GlobalSecondaryIndexes"]
        .as_sequence()
        .into_iter()
        .flatten()
        .filter_map(|g| g["IndexName"].as_str())
        .collect();
    assert!(!names.contains(&shop_store::keys::GSI_OUTBOX), "the pending index is the local emulation's: {names:?}");
    let attributes = serde_json::to_string(&to_json(&table["Properties"]["AttributeDefinitions"])).unwrap();
    assert!(!attributes.contains(codec::PENDING_SHARD), "no key attribute for an index AWS does not have");

    let filters: Vec<serde_json::Value> = of_type(&t, "AWS::Serverless::Function")
        .into_iter()
        .flat_map(|(_, f)| {
            f["Properties"]["Events"].as_mapping().into_iter().flatten().map(|(_, e)| e.clone()).collect::<Vec<_>>()
        })
        .filter(|e| e["Type"].as_str() == Some("DynamoDB"))
        .flat_map(|e| e["Properties"]["FilterCriteria"]["Filters"].as_sequence().cloned().unwrap_or_default())
        .map(|f| serde_json::from_str(f["Pattern"].as_str().expect("Pattern")).expect("pattern is JSON"))
        .collect();
    assert_eq!(filters, vec![codec::stream_filter()], "run python3 infra/scripts/gen-template.py");
}

/// The consumers mark an outcome dead-lettered on the receive their queue
/// allows last (`Config::max_receives`): every consumer queue's redrive
/// policy must allow exactly that many.
#[test]
fn every_consumer_queue_moves_a_message_to_its_dlq_after_the_receives_the_consumers_count() {
    let t = template();
    let expected = shop_app::config::Config::default().max_receives;
    let queues = of_type(&t, "AWS::SQS::Queue");
    let mut with_dlq = 0;
    for (name, q) in &queues {
        if let Some(n) = q["Properties"]["RedrivePolicy"]["maxReceiveCount"].as_u64() {
            assert_eq!(n, u64::from(expected), "{name}'s maxReceiveCount");
            with_dlq += 1;
        }
    }
    assert_eq!(with_dlq, shop_app::events::consumers::NAMES.len(), "one redriven queue per consumer");
}
