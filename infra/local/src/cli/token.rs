//! `shop token`: a development JWT for a shopper, or an operator's.

use super::now_secs;
use shop_local::jwt;

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
    /// The secret the stack verifies tokens with (`shop up`'s --jwt-secret).
    #[arg(long, env = "SHOP_JWT_SECRET", default_value = jwt::DEV_SECRET, hide_default_value = true)]
    jwt_secret: String,
}

impl Token {
    pub fn run(self) -> anyhow::Result<()> {
        if self.operator {
            let name = self.user.unwrap_or_else(|| "operator".to_owned());
            println!("{}", jwt::issue_operator(&self.jwt_secret, &name, now_secs(), self.ttl));
        } else {
            let user = self.user.ok_or_else(|| anyhow::anyhow!("--user or --operator"))?;
            shop_domain::UserId::parse(user.as_str())?;
            println!("{}", jwt::issue(&self.jwt_secret, &user, now_secs(), self.ttl));
        }
        Ok(())
    }
}
