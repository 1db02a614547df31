//! `roster check`: the config, the source's probe, and each vendor's read-only call.

use crate::out::outln;
use std::sync::Arc;

use super::config_error;
use crate::pass::{Context, NoHooks};
use crate::report::exit;
use crate::settings::Settings;
use crate::shutdown::Shutdown;

pub(super) async fn command(settings: Settings) -> i32 {
    let ctx = match Context::build(settings, Arc::new(NoHooks)) {
        Ok(c) => c,
        Err(e) => return config_error(&e),
    };
    outln!("config: ok");
    let budget = ctx.budget(&Shutdown::never());
    let mut code = exit::OK;
    match ctx.source.check(&budget).await {
        Ok(summary) => outln!("source: ok ({}): {summary}", ctx.source.describe()),
        Err(e) => {
            outln!("source: FAILED ({}): {e}", ctx.source.describe());
            code = exit::REFUSED;
        }
    }
    for (settings, vendor) in &ctx.vendors {
        match vendor.check(&budget).await {
            Ok(()) => outln!("vendor {}: ok", settings.name),
            Err(e) => {
                outln!("vendor {}: FAILED: {e}", settings.name);
                if code == exit::OK {
                    code = exit::FAILED_OPS;
                }
            }
        }
    }
    code
}
