//! `zkdev status`: every node's process and what its server answers.

use super::Ctx;
use crate::cli::StatusArgs;
use crate::error::Result;
use crate::observe;
use crate::output;

pub async fn run(ctx: &Ctx, _args: StatusArgs) -> Result<()> {
    let (paths, spec) = ctx.existing()?;
    let mut state = paths.load_state()?;
    // A node zkdev started but could not record (zkdev killed mid-start) is shown as what it is; status
    // writes nothing, so the next command that holds the lock records it.
    let ids = spec.ids();
    state.adopt_orphans(&paths, &ids);
    let status = observe::gather_with(&spec, &paths, &state, observe::Probing::FULL).await;
    if ctx.json {
        output::print_json(&status);
    } else {
        crate::out!("{}", output::status_table(&status));
    }
    Ok(())
}
