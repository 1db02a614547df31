//! The sled handle a `Store` shares, and how a process that exits after one command
//! leaves it: flushed, not torn down.

use std::sync::atomic::{AtomicBool, Ordering};

/// Set by [`leave_to_exit`].
static LEAVE_TO_EXIT: AtomicBool = AtomicBool::new(false);

/// For a process that exits once its command is done (every command but the daemon):
/// when a store's last handle goes, it is flushed and then left for the exit to reclaim,
/// instead of sled freeing its page cache node by node and joining its threads (a tenth
/// of a one-shot no-op pass over 100k people × 4 vendors). The directory lock goes with
/// the process, so such a process must not open the same store again.
pub fn leave_to_exit() {
    LEAVE_TO_EXIT.store(true, Ordering::SeqCst);
}

/// The database, torn down on drop unless [`leave_to_exit`] was called (and it is not
/// a temporary one, whose files only sled's teardown removes).
pub(super) struct Db {
    pub(super) db: sled::Db,
    pub(super) temporary: bool,
}

impl std::ops::Deref for Db {
    type Target = sled::Db;

    fn deref(&self) -> &sled::Db {
        &self.db
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        if LEAVE_TO_EXIT.load(Ordering::SeqCst) && !self.temporary {
            // What sled's own drop would have made durable (audit entries recorded after
            // the last waited-for write).
            if let Err(e) = self.db.flush() {
                tracing::error!(error = %e, "Could not flush the store.");
            }
            // A handle that is never dropped: sled's teardown never starts.
            std::mem::forget(self.db.clone());
        }
    }
}
