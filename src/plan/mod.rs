//! PURE planning: from what the source wants and what the store knows to the operations
//! of one vendor (`diff`), the wanted state per person (`desire`), start and end dates
//! (`dates`), the changes the clock alone will bring (`upcoming`), drift found by a full
//! pass (`drift`), and who would share an account (`identity`). No async, no I/O, no
//! clock (the moment is passed in); deterministic (ordered by person id).
//!
//! Must not: depend on anything but `model`.

pub mod dates;
mod desire;
mod diff;
pub mod drift;
mod identity;
pub mod upcoming;

pub use dates::{DateRules, Stage};
pub use desire::{Target, desire, desired_for, desired_sorted, held_ids};
pub use diff::{
    Desired, OpKind, Operation, Plan, Policy, keep_create_only, plan, plan_sorted,
    plan_sorted_with, plan_with,
};
pub use identity::{Claims, Collisions, Conflicts, judge};
