//! The safety limits that refuse a pass before anything is pushed. PURE.

use crate::config::Safety;
use crate::plan::Plan;

/// Why the safety gate refuses this vendor's plan, if it does.
pub fn refusal(vendor: &str, plan: &Plan, safety: &Safety) -> Option<String> {
    let removals = plan.removals();
    if removals == 0 {
        return None;
    }
    if removals as u64 > safety.max_deactivations {
        return Some(format!(
            "{vendor}: {removals} deactivations exceed safety.max_deactivations = {}",
            safety.max_deactivations
        ));
    }
    let linked = plan.linked;
    let ratio = removals as f64 / linked.max(1) as f64;
    if ratio > safety.max_deactivation_ratio {
        return Some(format!(
            "{vendor}: {removals} deactivations of {linked} active people ({:.0}%) exceed \
             safety.max_deactivation_ratio = {}",
            ratio * 100.0,
            safety.max_deactivation_ratio
        ));
    }
    None
}

/// Why the source's size refuses the pass: it lost more than the allowed share of the
/// records the last completed pass read.
pub fn source_drop(last: Option<u64>, now: u64, safety: &Safety) -> Option<String> {
    let last = last.filter(|&n| n > 0)?;
    if now >= last {
        return None;
    }
    let drop = (last - now) as f64 / last as f64;
    (drop > safety.max_source_drop_ratio).then(|| {
        format!(
            "the source has {now} records, {:.0}% fewer than the {last} of the last completed \
             pass (safety.max_source_drop_ratio = {})",
            drop * 100.0,
            safety.max_source_drop_ratio
        )
    })
}
