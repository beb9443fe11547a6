//! `shop token`: a development JWT for a shopper, or an operator's, signed
//! with the data dir's secret (the one `shop up` on that dir verifies).

use super::{DataDir, now_secs};
use shop_local::jwt;
use shop_local::secrets::Secrets;

#[derive(clap::Args)]
pub struct Token {
    /// The shopper the token is for (or, with --operator, the operator's name).
    #[arg(long, required_unless_present = "operator")]
    user: Option<String>,
    /// An operator's token for the saga console (`role: operator`), not a shopper's.
    #[arg(long)]
    operator: bool,
    /// Validity in seconds.
    #[arg(long, default_value_t = 86_400)]
    ttl: i64,
    #[command(flatten)]
    data: DataDir,
}

impl Token {
    pub fn run(self) -> anyhow::Result<()> {
        let secret = Secrets::of_data_dir(&self.data.data_dir)?.jwt_secret;
        if self.operator {
            let name = self.user.unwrap_or_else(|| "operator".to_owned());
            println!("{}", jwt::issue_operator(&secret, &name, now_secs(), self.ttl));
        } else {
            let user = self.user.ok_or_else(|| anyhow::anyhow!("--user or --operator"))?;
            shop_domain::UserId::parse(user.as_str())?;
            println!("{}", jwt::issue(&secret, &user, now_secs(), self.ttl));
        }
        Ok(())
    }
}
