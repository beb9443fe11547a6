//! `shop console --stack NAME`: the saga console over a deployed stack.

use super::{now_secs, shutdown_signal};
use shop_local::jwt;

#[derive(clap::Args)]
pub struct Console {
    /// The CloudFormation stack; credentials, region and endpoint from the usual AWS chain.
    #[arg(long, value_name = "NAME", env = "SHOP_STACK")]
    stack: String,
    /// The loopback port the console listens on.
    #[arg(long, default_value_t = 3100)]
    port: u16,
    /// Let the console redrive DLQs, replay events and republish orders.
    #[arg(long)]
    allow_actions: bool,
    /// Signs the console's operator tokens; a fresh random one per run when unset.
    #[arg(long, env = "SHOP_JWT_SECRET", hide_env_values = true)]
    jwt_secret: Option<String>,
    /// Validity of the printed operator token, in seconds.
    #[arg(long, default_value_t = 12 * 3600)]
    ttl: i64,
}

impl Console {
    pub async fn run(self) -> anyhow::Result<()> {
        shop_app::obs::telemetry::init("shop-console");
        let deployed = shop_local::deployed::DeployedStack::resolve(&self.stack).await?;
        let secret = self.jwt_secret.map_or_else(|| shop_local::secrets::random_hex(32), Ok)?;
        let token = jwt::issue_operator(&secret, "operator", now_secs(), self.ttl);
        let (addr, server) =
            shop_local::console::serve_deployed(deployed, self.port, self.allow_actions, secret, shutdown_signal())
                .await?;
        println!(
            "saga console of stack {} on http://{addr}/console ({})",
            self.stack,
            if self.allow_actions { "actions allowed" } else { "read-only; --allow-actions to act" }
        );
        println!("sign in at http://{addr}/console/login with this operator token (valid {} s):", self.ttl);
        println!("{token}");
        server.await?;
        Ok(())
    }
}
