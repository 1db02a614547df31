//! PURE planning: from what the source wants and what the store knows to the operations
//! of one vendor (`diff`), the wanted state per person (`desire`), and drift found by a
//! full pass (`drift`), and who would share an account (`identity`). No async, no I/O, no clock; deterministic (ordered by person id).
//!
//! Must not: depend on anything but `model`.

mod desire;
mod diff;
pub mod drift;
mod identity;

pub use desire::{Target, desire, desired_for, desired_sorted, held_ids};
pub use diff::{Desired, OpKind, Operation, Plan, plan, plan_sorted};
pub use identity::{Claims, Collisions, Conflicts, judge};
