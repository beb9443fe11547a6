//! `shop dump`: the business state as one canonical document.

use super::{DataDir, target};

#[derive(clap::Args)]
pub struct Dump {
    #[command(flatten)]
    data: DataDir,
    /// Dump this DynamoDB table of a deployed stack instead of the data dir
    /// (credentials, region and endpoint from the usual AWS_* variables / profile).
    #[arg(long, env = "SHOP_TABLE")]
    table: Option<String>,
}

impl Dump {
    pub async fn run(self) -> anyhow::Result<()> {
        let app = target(&self.data.data_dir, self.table.as_deref()).await?;
        let sims = match self.table {
            Some(_) => shop_local::SimulatorState { pg: None, sink: None },
            None => shop_local::open_simulators(&self.data.data_dir)?,
        };
        let simulated = shop_local::dump::Simulated { pg: sims.pg.as_deref(), sink: sims.sink.as_deref() };
        let state = shop_local::dump::dump(&app, simulated).await?;
        print!("{}", shop_local::dump::text(&state)?);
        Ok(())
    }
}
