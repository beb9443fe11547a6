//! `shop`: run the product locally and operate it.

use clap::{Parser, Subcommand};
use shop_app::config::Config;
use shop_local::{Stack, StackOptions, jwt, seed};
use std::path::PathBuf;

#[derive(Parser)]
#[command(name = "shop", about = "The shop backend on one machine: API, store, and operations")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the API on 127.0.0.1 with the embedded store (loads the demo catalog into a new data dir).
    Up {
        #[arg(long, default_value_t = 3000)]
        port: u16,
        #[arg(long, default_value = ".shop-data", env = "SHOP_DATA_DIR")]
        data_dir: PathBuf,
        /// Also serve the embedded store's DynamoDB API on this port (for `cargo lambda watch`).
        #[arg(long)]
        dynamodb_port: Option<u16>,
        /// Seconds a new order stays payable.
        #[arg(long, default_value_t = 900)]
        order_ttl: i64,
        #[arg(long, env = "SHOP_JWT_SECRET", default_value = jwt::DEV_SECRET, hide_default_value = true)]
        jwt_secret: String,
        /// Start with an empty data dir instead of the demo catalog.
        #[arg(long)]
        no_demo: bool,
    },
    /// Print a development JWT for a user.
    Token {
        #[arg(long)]
        user: String,
        /// Validity in seconds.
        #[arg(long, default_value_t = 86_400)]
        ttl: i64,
        #[arg(long, env = "SHOP_JWT_SECRET", default_value = jwt::DEV_SECRET, hide_default_value = true)]
        jwt_secret: String,
    },
    /// Measure orders per second through the whole local stack (HTTP to store, file-backed).
    Bench {
        #[arg(long, default_value_t = 2000)]
        orders: usize,
        #[arg(long, default_value_t = 32)]
        concurrency: usize,
        /// Also hold a coupon and spend points on every order.
        #[arg(long)]
        full: bool,
    },
    /// Load products, coupons and users from a catalog file (format: docs/local.md).
    Seed {
        #[arg(long, default_value = ".shop-data", env = "SHOP_DATA_DIR")]
        data_dir: PathBuf,
        #[arg(long)]
        file: PathBuf,
    },
}

fn now_secs() -> i64 {
    chrono::Utc::now().timestamp()
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Token { user, ttl, jwt_secret } => {
            shop_domain::UserId::parse(user.as_str())?;
            println!("{}", jwt::issue(&jwt_secret, &user, now_secs(), ttl));
        }
        Command::Bench { orders, concurrency, full } => {
            anyhow::ensure!(orders > 0 && concurrency > 0, "orders and concurrency must be positive");
            let report = shop_local::bench::run(shop_local::bench::BenchOptions { orders, concurrency, full }).await?;
            println!("{report}");
        }
        Command::Seed { data_dir, file } => {
            shop_app::telemetry::init("shop-seed");
            let catalog = seed::Catalog::parse(&std::fs::read_to_string(&file)?)?;
            let (_, app, _) = shop_local::open(Some(&data_dir), Config::default(), None, None).await?;
            let r = seed::seed(&app, &catalog).await?;
            println!(
                "seeded {} products, {} coupons ({} already present, kept), {} users",
                r.products, r.coupons_created, r.coupons_kept, r.users
            );
        }
        Command::Up { port, data_dir, dynamodb_port, order_ttl, jwt_secret, no_demo } => {
            shop_app::telemetry::init("shop");
            let config = Config { order_ttl_secs: order_ttl, ..Config::default() };
            let stack = Stack::start(StackOptions {
                data_dir: Some(data_dir.clone()),
                port,
                dynamodb_port,
                jwt_secret,
                config,
                seed_if_new: if no_demo { None } else { Some(seed::Catalog::parse(seed::DEMO_CATALOG)?) },
                ..StackOptions::default()
            })
            .await?;
            println!("shop API on {} (data in {})", stack.url(), data_dir.display());
            if let Some(a) = stack.dynamodb_addr {
                println!("DynamoDB endpoint on http://{a} (table {})", stack.app.config.table_name);
            }
            println!("try: curl -H \"Authorization: Bearer $(shop token --user u1)\" {}/orders/<orderId>", stack.url());
            shutdown_signal().await;
            stack.stop().await;
        }
    }
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => return ctrl_c.await.unwrap_or(()),
        };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    ctrl_c.await.unwrap_or(());
}
