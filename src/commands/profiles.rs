//! `zkdev profiles`: the built-in profiles and what they set.

use super::Ctx;
use crate::error::Result;
use crate::model::profile;
use crate::output;

pub fn run(ctx: &Ctx) -> Result<()> {
    let mut all = Vec::new();
    for name in profile::builtin_names() {
        let (origin, p) = crate::os::profile::load(name)?;
        all.push((name, p.description.clone().unwrap_or_default(), p.settings(&origin)?));
    }
    if ctx.json {
        let v: Vec<_> = all
            .iter()
            .map(|(n, d, s)| serde_json::json!({"name": n, "description": d, "settings": s}))
            .collect();
        output::print_json(&v);
        return Ok(());
    }
    let rows: Vec<Vec<String>> = all
        .iter()
        .map(|(n, d, s)| {
            vec![
                n.to_string(),
                format!("{}/{}/{}", s.tick_time, s.init_limit, s.sync_limit),
                s.heap_max_mb.map_or("JVM default".into(), |m| format!("{m} MB")),
                d.clone(),
            ]
        })
        .collect();
    crate::out!(
        "{}",
        output::table(&["NAME", "TICK/INIT/SYNC", "HEAP", "DESCRIPTION"], &rows)
    );
    crate::outln!("\nA profile file (--profile FILE) may start from one of these with `extends = \"fast\"`; `zkdev render` shows the result.");
    Ok(())
}
