//! An in-process vendor for the executor's and the pass's unit tests: stateful like the
//! sandbox's fakes (accounts by matching key, ids it assigns, a create that collides
//! with an existing key is `Exists`), with scripted failures, replies that are lost after
//! the vendor acted, latency, and a log of every call.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;

use crate::budget::Budget;
use crate::http::{Flow, FlowSettings, Quiet};
use crate::model::{Changes, Fields, MapError, Person, PersonId, Remote};
use crate::vendor::{Vendor, VendorError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    Lookup,
    Create,
    Update,
    SetActive,
    List,
    Delete,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub key: PersonId,
    pub fields: Fields,
    pub active: bool,
}

#[derive(Default)]
struct State {
    accounts: BTreeMap<String, Account>,
    next_id: u64,
    /// Failures for the next calls of a kind, in order.
    script: Vec<(Call, VendorError)>,
    /// Calls of this kind that act at the vendor but lose their reply (a transport error).
    lose_reply: Vec<Call>,
    log: Vec<(Call, String)>,
    latency: Duration,
}

pub struct FakeVendor {
    name: String,
    flow: Arc<Flow>,
    state: Mutex<State>,
}

impl FakeVendor {
    pub fn new(name: &str) -> Arc<Self> {
        Arc::new(Self {
            name: name.to_string(),
            flow: Arc::new(Flow::new(name, FlowSettings::default(), Arc::new(Quiet))),
            state: Mutex::new(State::default()),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The next `times` calls of `call` fail with `error`.
    pub fn fail(&self, call: Call, error: VendorError, times: usize) {
        let mut st = self.lock();
        for _ in 0..times {
            st.script.push((call, error.clone()));
        }
    }

    /// The next call of `call` acts at the vendor but its reply is lost.
    pub fn lose_reply(&self, call: Call) {
        self.lock().lose_reply.push(call);
    }

    pub fn set_latency(&self, latency: Duration) {
        self.lock().latency = latency;
    }

    /// An account that exists already (made by hand, or before a crash).
    pub fn add(&self, key: &str, fields: Fields, active: bool) -> String {
        let mut st = self.lock();
        st.next_id += 1;
        let id = format!("r-{}", st.next_id);
        st.accounts.insert(
            id.clone(),
            Account {
                key: PersonId::from(key),
                fields,
                active,
            },
        );
        id
    }

    pub fn accounts(&self) -> BTreeMap<String, Account> {
        self.lock().accounts.clone()
    }

    /// The accounts carrying `key`.
    pub fn by_key(&self, key: &str) -> Vec<Account> {
        self.lock()
            .accounts
            .values()
            .filter(|a| a.key.as_str() == key)
            .cloned()
            .collect()
    }

    pub fn calls(&self, call: Call) -> usize {
        self.lock().log.iter().filter(|(c, _)| *c == call).count()
    }

    pub fn writes(&self) -> usize {
        self.lock()
            .log
            .iter()
            .filter(|(c, _)| {
                matches!(
                    c,
                    Call::Create | Call::Update | Call::SetActive | Call::Delete
                )
            })
            .count()
    }

    /// Logs the call, waits the latency, and answers a scripted failure if one is due.
    async fn begin(&self, budget: &Budget, call: Call, what: &str) -> Result<bool, VendorError> {
        budget.check().map_err(|s| {
            VendorError::NotSent(crate::http::NotSent::from_stop(
                s,
                crate::http::Waiting::Pacing,
            ))
        })?;
        let latency = {
            let mut st = self.lock();
            st.log.push((call, what.to_string()));
            st.latency
        };
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }
        let mut st = self.lock();
        if let Some(i) = st.script.iter().position(|(c, _)| *c == call) {
            return Err(st.script.remove(i).1);
        }
        let lose = st.lose_reply.iter().position(|c| *c == call);
        if let Some(i) = lose {
            st.lose_reply.remove(i);
        }
        Ok(lose.is_some())
    }
}

fn lost() -> VendorError {
    VendorError::Transport("connection reset (the reply was lost)".into())
}

#[async_trait]
impl Vendor for FakeVendor {
    fn name(&self) -> &str {
        &self.name
    }

    fn map(&self, person: &Person) -> Result<Fields, MapError> {
        let mut f = Fields::new();
        match (&person.first_name, &person.last_name) {
            (Some(first), Some(last)) => {
                f.insert("name".into(), format!("{first} {last}"));
            }
            _ => return Err(MapError("the fake needs a first and a last name".into())),
        }
        if let Some(e) = &person.email {
            f.insert("email".into(), e.to_string());
        }
        Ok(f)
    }

    fn field_names(&self) -> crate::vendor::FieldNames {
        crate::vendor::FieldNames {
            listed: vec!["name", "email"],
            more: None,
        }
    }

    fn flow(&self) -> &Arc<Flow> {
        &self.flow
    }

    async fn check(&self, _budget: &Budget) -> Result<(), VendorError> {
        Ok(())
    }

    async fn lookup(
        &self,
        budget: &Budget,
        person: &PersonId,
        _fields: &Fields,
    ) -> Result<Option<Remote>, VendorError> {
        self.begin(budget, Call::Lookup, person.as_str()).await?;
        Ok(self
            .lock()
            .accounts
            .iter()
            .find(|(_, a)| &a.key == person)
            .map(|(id, a)| Remote {
                id: id.clone(),
                active: Some(a.active),
                fields: a.fields.clone(),
            }))
    }

    async fn create(
        &self,
        budget: &Budget,
        person: &PersonId,
        fields: &Fields,
    ) -> Result<String, VendorError> {
        let lose = self.begin(budget, Call::Create, person.as_str()).await?;
        let mut st = self.lock();
        if st.accounts.values().any(|a| &a.key == person) {
            return Err(VendorError::Exists(format!("key {person} is taken")));
        }
        st.next_id += 1;
        let id = format!("r-{}", st.next_id);
        st.accounts.insert(
            id.clone(),
            Account {
                key: person.clone(),
                fields: fields.clone(),
                active: true,
            },
        );
        if lose { Err(lost()) } else { Ok(id) }
    }

    async fn update(
        &self,
        budget: &Budget,
        remote: &str,
        changes: &Changes,
        _fields: &Fields,
    ) -> Result<(), VendorError> {
        let lose = self.begin(budget, Call::Update, remote).await?;
        let mut st = self.lock();
        let account = st
            .accounts
            .get_mut(remote)
            .ok_or_else(|| VendorError::NotFound(format!("no account {remote}")))?;
        for (k, v) in changes {
            match v {
                Some(v) => account.fields.insert(k.clone(), v.clone()),
                None => account.fields.remove(k),
            };
        }
        if lose { Err(lost()) } else { Ok(()) }
    }

    async fn set_active(
        &self,
        budget: &Budget,
        remote: &str,
        active: bool,
    ) -> Result<(), VendorError> {
        let lose = self.begin(budget, Call::SetActive, remote).await?;
        let mut st = self.lock();
        let account = st
            .accounts
            .get_mut(remote)
            .ok_or_else(|| VendorError::NotFound(format!("no account {remote}")))?;
        account.active = active;
        if lose { Err(lost()) } else { Ok(()) }
    }

    async fn list(&self, budget: &Budget) -> Result<Vec<Remote>, VendorError> {
        self.begin(budget, Call::List, "").await?;
        Ok(self
            .lock()
            .accounts
            .iter()
            .map(|(id, a)| Remote {
                id: id.clone(),
                active: Some(a.active),
                fields: a.fields.clone(),
            })
            .collect())
    }

    async fn delete(&self, budget: &Budget, remote: &str) -> Result<(), VendorError> {
        self.begin(budget, Call::Delete, remote).await?;
        self.lock()
            .accounts
            .remove(remote)
            .map(|_| ())
            .ok_or_else(|| VendorError::NotFound(format!("no account {remote}")))
    }

    fn supports_delete(&self) -> bool {
        true
    }
}
