//! `shop env`: the environment a function needs beside the local stack
//! (`cargo lambda watch`, the AWS CLI, an SDK): the data dir's DynamoDB
//! credentials, the PG simulator's secret key, the key refund accounts are
//! sealed with, the endpoints. Meant for
//! `eval "$(shop env --dynamodb-port 8000)"`.

use super::DataDir;
use shop_local::secrets::Secrets;

#[derive(clap::Args)]
pub struct Env {
    #[command(flatten)]
    data: DataDir,
    /// The port `shop up --dynamodb-port` serves the store on (sets AWS_ENDPOINT_URL_DYNAMODB).
    #[arg(long)]
    dynamodb_port: Option<u16>,
    /// The port of `shop up`'s PG simulator (sets PG_BASE_URL).
    #[arg(long, default_value_t = 3001)]
    pg_port: u16,
    /// The port of `shop up`'s data-platform sink (sets DATA_PLATFORM_URL).
    #[arg(long, default_value_t = 3002)]
    sink_port: u16,
}

impl Env {
    pub fn run(self) -> anyhow::Result<()> {
        let s = Secrets::of_data_dir(&self.data.data_dir)?;
        let admission = s.admission_secret();
        let refund_account_key = hex::encode(s.refund_account_key());
        let mut vars = vec![
            ("AWS_ACCESS_KEY_ID", s.aws_access_key_id),
            ("AWS_SECRET_ACCESS_KEY", s.aws_secret_access_key),
            ("AWS_REGION", "local".to_owned()),
            ("TABLE_NAME", shop_app::config::Config::default().table_name),
            ("PG_BASE_URL", format!("http://127.0.0.1:{}", self.pg_port)),
            ("PG_SECRET_KEY", s.pg_secret_key),
            ("ADMISSION_SECRET", admission),
            ("REFUND_ACCOUNT_KEY", refund_account_key),
            ("DATA_PLATFORM_URL", format!("http://127.0.0.1:{}", self.sink_port)),
        ];
        if let Some(port) = self.dynamodb_port {
            vars.push(("AWS_ENDPOINT_URL_DYNAMODB", format!("http://127.0.0.1:{port}")));
        }
        for (name, value) in vars {
            // Every value is hex, a port or a plain name: no quoting needed,
            // but quote anyway so a changed format cannot break a shell.
            println!("export {name}='{}'", value.replace('\'', "'\\''"));
        }
        Ok(())
    }
}
