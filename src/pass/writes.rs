//! The calls behind each operation, and the crash-safe create protocol.
//!
//! A create is not idempotent: before it, the person is looked up by matching key and an
//! existing account is adopted; an intent record (`Creating`) is written before the
//! create call, and a retried create looks up again first. So a process killed between
//! the vendor's reply and the store write leaves an intent that the next pass resolves by
//! lookup, never by a second create.
//!
//! Architecture invariant: a `VendorRecord` is written only after the vendor acknowledged
//! (or, for the `Creating` intent, before a create whose outcome is then always resolved
//! by a lookup).

use std::sync::atomic::{AtomicBool, Ordering};

use tracing::{debug, warn};

use super::push::{Done, Failure, Pusher};
use crate::model::{Changes, Fields, Op, PersonId, RecordState, Remote, changes};
use crate::plan::{Claims, OpKind, judge, keep_create_only};
use crate::vendor::VendorError;

fn names(changes: &Changes) -> Vec<String> {
    changes.keys().cloned().collect()
}

impl Pusher {
    pub(super) async fn dispatch(
        &self,
        person: &PersonId,
        kind: &OpKind,
        claims: &Claims,
    ) -> Result<Done, Failure> {
        match kind {
            OpKind::Create { fields, .. } => {
                let earlier = self.store.get(self.name(), person)?.map(|r| r.fields);
                self.create(person, fields, earlier.as_ref(), claims).await
            }
            OpKind::Update {
                remote,
                changes,
                fields,
            } => self.update(person, remote, changes, fields, claims).await,
            OpKind::Reactivate {
                remote,
                changes,
                fields,
            } => {
                self.reactivate(person, remote, changes, fields, claims)
                    .await
            }
            OpKind::Deactivate { remote, .. } => self.deactivate(person, remote.as_deref()).await,
            OpKind::Delete { remote } => self.delete(person, remote.as_deref()).await,
        }
    }

    async fn update(
        &self,
        person: &PersonId,
        remote: &str,
        delta: &Changes,
        fields: &Fields,
        claims: &Claims,
    ) -> Result<Done, Failure> {
        match self
            .write(person, Op::Update, names(delta), move || {
                self.vendor.update(&self.budget, remote, delta, fields)
            })
            .await
        {
            Ok(()) => {
                self.record(person, Some(remote), RecordState::Active, fields)
                    .await
                    .map_err(Failure::unrecorded)?;
                Ok(Done::Updated)
            }
            Err(VendorError::NotFound(_)) => self.relink(person, fields, claims).await,
            Err(e) => Err(e.into()),
        }
    }

    async fn lookup(&self, person: &PersonId, fields: &Fields) -> Result<Option<Remote>, Failure> {
        Ok(self
            .call(move || self.vendor.lookup(&self.budget, person, fields))
            .await?)
    }

    /// `earlier`: the fields of this person's stored record before this create (an
    /// interrupted create's intent, or what was pushed before a relink): an account found
    /// with those values is theirs too.
    async fn create(
        &self,
        person: &PersonId,
        fields: &Fields,
        earlier: Option<&Fields>,
        claims: &Claims,
    ) -> Result<Done, Failure> {
        if let Some(remote) = self.lookup(person, fields).await? {
            return self.adopt(person, remote, fields, earlier, claims).await;
        }
        self.record(person, None, RecordState::Creating, fields)
            .await?;
        let first = &AtomicBool::new(true);
        let (vendor, budget) = (&self.vendor, &self.budget);
        let made = self
            .call(move || async move {
                // A retried create may follow one that reached the vendor: look first.
                if !first.swap(false, Ordering::SeqCst)
                    && let Some(remote) = vendor.lookup(budget, person, fields).await?
                {
                    return Ok(Err(remote));
                }
                vendor.create(budget, person, fields).await.map(Ok)
            })
            .await;
        // A create that turned into an adoption (found on a retry) wrote nothing.
        if !matches!(made, Ok(Err(_))) {
            self.audit(person, Op::Create, fields.keys().cloned().collect(), &made);
        }
        match made {
            Ok(Ok(id)) => {
                self.record(person, Some(&id), RecordState::Active, fields)
                    .await
                    .map_err(Failure::unrecorded)?;
                debug!("Created.");
                Ok(Done::Created)
            }
            Ok(Err(remote)) => self.adopt(person, remote, fields, earlier, claims).await,
            Err(VendorError::Exists(detail)) => match self.lookup(person, fields).await? {
                Some(remote) => {
                    let adopted = self.adopt(person, remote, fields, earlier, claims).await;
                    if let Err(Failure::Conflict(_)) = &adopted {
                        // The vendor refused the create, so it made no account for this
                        // person: the intent goes.
                        self.store.remove(self.name(), person).await?;
                    }
                    adopted
                }
                None => Err(Failure::Unmatched(detail)),
            },
            Err(e) => {
                // A definite refusal means no account was made: drop the intent. Anything
                // else leaves it, so the next pass looks up before creating.
                if matches!(
                    e,
                    VendorError::Rejected { .. }
                        | VendorError::Auth { .. }
                        | VendorError::Waiting(_)
                        | VendorError::Setup { .. }
                ) {
                    self.store.remove(self.name(), person).await?;
                }
                Err(e.into())
            }
        }
    }

    /// Links an account found by matching key, then brings it in line with the source;
    /// an account that is someone else's is a conflict, and nothing is written;
    /// a create-only field is sent only where the account has no value for it.
    async fn adopt(
        &self,
        person: &PersonId,
        remote: Remote,
        fields: &Fields,
        earlier: Option<&Fields>,
        claims: &Claims,
    ) -> Result<Done, Failure> {
        self.mine(person, &remote, fields, earlier, claims)?;
        let fields = &keep_create_only(fields, &remote.fields, &self.create_only, true);
        let enable = remote.needs_enabling();
        let rid = remote.id.as_str();
        let state = if enable {
            RecordState::Deactivated
        } else {
            RecordState::Active
        };
        self.record(person, Some(rid), state, &remote.fields)
            .await?;
        debug!(remote = %remote.id, "Adopted existing account.");
        if enable {
            self.write(person, Op::Reactivate, Vec::new(), move || {
                self.vendor.set_active(&self.budget, rid, true)
            })
            .await?;
            self.record(person, Some(rid), RecordState::Active, &remote.fields)
                .await
                .map_err(Failure::unrecorded)?;
        }
        let delta = &changes(&remote.fields, fields);
        if !delta.is_empty() {
            self.write(person, Op::Update, names(delta), move || {
                self.vendor.update(&self.budget, rid, delta, fields)
            })
            .await?;
            self.record(person, Some(rid), RecordState::Active, fields)
                .await
                .map_err(Failure::unrecorded)?;
        }
        Ok(Done::Adopted)
    }

    /// Whether `remote`, found for `person`, is theirs to link: not linked to anyone
    /// else in the store, and holding no value that says it is someone else's
    /// (`plan::judge`).
    fn mine(
        &self,
        person: &PersonId,
        remote: &Remote,
        fields: &Fields,
        earlier: Option<&Fields>,
        claims: &Claims,
    ) -> Result<(), Failure> {
        if let Some(holder) = self.store.holder(self.name(), &remote.id)?
            && holder != *person
        {
            return Err(Failure::Conflict(format!(
                "the account found by lookup ({}) is linked to {holder}: one account is never \
                 linked to two people, so it is not linked to {person}; give each their own \
                 values in the source",
                remote.id
            )));
        }
        judge(
            self.vendor.unique_keys(),
            person,
            fields,
            earlier,
            remote,
            claims,
        )
        .map_err(Failure::Conflict)
    }

    /// The stored account is gone at the vendor: forget it and create or adopt afresh.
    async fn relink(
        &self,
        person: &PersonId,
        fields: &Fields,
        claims: &Claims,
    ) -> Result<Done, Failure> {
        warn!("Account no longer exists at the vendor; linking again.");
        let earlier = self.store.get(self.name(), person)?.map(|r| r.fields);
        self.store.remove(self.name(), person).await?;
        self.create(person, fields, earlier.as_ref(), claims).await
    }

    async fn reactivate(
        &self,
        person: &PersonId,
        remote: &str,
        delta: &Changes,
        fields: &Fields,
        claims: &Claims,
    ) -> Result<Done, Failure> {
        let pushed = self
            .store
            .get(self.name(), person)?
            .map(|r| r.fields)
            .unwrap_or_default();
        match self
            .write(person, Op::Reactivate, Vec::new(), move || {
                self.vendor.set_active(&self.budget, remote, true)
            })
            .await
        {
            Ok(()) => {}
            Err(VendorError::NotFound(_)) => return self.relink(person, fields, claims).await,
            Err(e) => return Err(e.into()),
        }
        self.record(person, Some(remote), RecordState::Active, &pushed)
            .await
            .map_err(Failure::unrecorded)?;
        if !delta.is_empty() {
            self.write(person, Op::Update, names(delta), move || {
                self.vendor.update(&self.budget, remote, delta, fields)
            })
            .await?;
            self.record(person, Some(remote), RecordState::Active, fields)
                .await
                .map_err(Failure::unrecorded)?;
        }
        Ok(Done::Reactivated)
    }

    /// Finds the account for a removal when only an intent was stored.
    async fn resolve(
        &self,
        person: &PersonId,
        remote: Option<&str>,
    ) -> Result<Option<(String, Fields)>, Failure> {
        let stored = self.store.get(self.name(), person)?;
        let fields = stored
            .as_ref()
            .map(|r| r.fields.clone())
            .unwrap_or_default();
        match remote {
            Some(id) => Ok(Some((id.to_string(), fields))),
            None => match self.lookup(person, &fields).await? {
                Some(r) => {
                    if let Err(conflict) = self.mine(person, &r, &fields, None, &Claims::default())
                    {
                        // The account found is someone else's, so the create never made
                        // one for this person: nothing of theirs to remove.
                        self.store.remove(self.name(), person).await?;
                        return Err(conflict);
                    }
                    Ok(Some((r.id, fields)))
                }
                None => {
                    // The create never reached the vendor: nothing to remove.
                    self.store.remove(self.name(), person).await?;
                    Ok(None)
                }
            },
        }
    }

    async fn deactivate(&self, person: &PersonId, remote: Option<&str>) -> Result<Done, Failure> {
        let Some((id, fields)) = self.resolve(person, remote).await? else {
            return Ok(Done::Nothing);
        };
        let rid = id.as_str();
        match self
            .write(person, Op::Deactivate, Vec::new(), move || {
                self.vendor.set_active(&self.budget, rid, false)
            })
            .await
        {
            Ok(()) => {}
            // Gone at the vendor is as deactivated as it gets; keep the record so a
            // return is handled as a relink.
            Err(VendorError::NotFound(_)) => {
                warn!("Account to deactivate no longer exists at the vendor.");
            }
            Err(e) => return Err(e.into()),
        }
        self.record(person, Some(&id), RecordState::Deactivated, &fields)
            .await
            .map_err(Failure::unrecorded)?;
        Ok(Done::Deactivated)
    }

    async fn delete(&self, person: &PersonId, remote: Option<&str>) -> Result<Done, Failure> {
        let Some((id, _)) = self.resolve(person, remote).await? else {
            return Ok(Done::Nothing);
        };
        let rid = id.as_str();
        match self
            .write(person, Op::Delete, Vec::new(), move || {
                self.vendor.delete(&self.budget, rid)
            })
            .await
        {
            Ok(()) | Err(VendorError::NotFound(_)) => {}
            Err(e) => return Err(e.into()),
        }
        self.store
            .remove(self.name(), person)
            .await
            .map_err(Failure::unrecorded)?;
        Ok(Done::Deleted)
    }
}
