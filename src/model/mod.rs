//! The domain every layer speaks: people (what sources produce), the fields a vendor
//! should hold, the records roster keeps of accounts, and the names of what a pass does.
//!
//! Must not: do I/O, know any vendor's wire format, or depend on any other module of
//! roster. The pure planning (`plan`) depends on this alone.

mod fields;
mod identity;
mod op;
mod person;
mod record;
mod snapshot;
mod when;

pub use fields::{Changes, Fields, MapError, changes};
pub use identity::{Case, KeyOf, UniqueKey};
pub use op::{OnRemove, Op, Outcome, PassOutcome, Why};
pub use person::{Groups, Person, PersonId};
pub use record::{Known, RecordState, Remote, VendorRecord};
pub use snapshot::{InvalidRecord, Snapshot};
pub use when::When;
