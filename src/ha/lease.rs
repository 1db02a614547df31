//! The Lease on the Kubernetes API: read, create, and replace guarded by the
//! `resourceVersion` that was read, so of two replicas writing at once exactly one
//! wins and the other gets 409 Conflict.
//!
//! Owns: the kube client (standard config inference: `$KUBECONFIG` / `~/.kube/config`,
//! else the pod's service account) with timeouts short enough for the election.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use kube::api::{Api, PostParams};
use kube::core::ObjectMeta;

/// Why a Lease call failed, as the election needs to tell them apart.
#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    /// 409: someone else wrote first (a stale resourceVersion, or create of an existing
    /// Lease). Not a fault: the election reads again.
    #[error("conflict: {0}")]
    Conflict(String),
    /// 404 on a replace: the Lease was deleted meanwhile.
    #[error("the Lease does not exist: {0}")]
    NotFound(String),
    /// 401/403: the service account may not do this (see the Role in deploy/kubernetes).
    #[error("not allowed by the API server ({status}): {message}")]
    Denied { status: u16, message: String },
    /// Anything else: unreachable, timed out, 5xx, unexpected reply.
    #[error("{0}")]
    Failed(String),
}

pub struct LeaseApi {
    api: Api<Lease>,
    name: String,
    namespace: String,
}

/// A kube client from the standard config, its calls bounded by `timeout`.
///
/// # Errors
/// No usable config (neither a kubeconfig nor an in-cluster service account).
pub async fn client(timeout: Duration) -> Result<kube::Client, String> {
    let config = kube::Config::infer()
        .await
        .map_err(|e| format!("no Kubernetes client config: {e}"))?;
    client_from(config, timeout)
}

/// A kube client from `config`, its calls bounded by `timeout`.
///
/// # Errors
/// A config kube cannot build a client from.
pub fn client_from(mut config: kube::Config, timeout: Duration) -> Result<kube::Client, String> {
    config.connect_timeout = Some(timeout);
    config.read_timeout = Some(timeout);
    config.write_timeout = Some(timeout);
    kube::Client::try_from(config).map_err(|e| format!("cannot build the Kubernetes client: {e}"))
}

impl LeaseApi {
    /// The Lease `name` in `namespace` (default: the client's namespace: in a pod, its own).
    pub fn new(client: kube::Client, namespace: Option<&str>, name: &str) -> Self {
        let namespace = namespace
            .unwrap_or_else(|| client.default_namespace())
            .to_string();
        Self {
            api: Api::namespaced(client, &namespace),
            name: name.to_string(),
            namespace,
        }
    }

    /// `namespace/name`, for logs.
    pub fn path(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    /// # Errors
    /// Any failure but 404 (which is `None`).
    pub async fn get(&self) -> Result<Option<Lease>, LeaseError> {
        self.api.get_opt(&self.name).await.map_err(classify)
    }

    /// # Errors
    /// `Conflict` when it exists already.
    pub async fn create(&self, spec: LeaseSpec) -> Result<Lease, LeaseError> {
        let lease = Lease {
            metadata: ObjectMeta {
                name: Some(self.name.clone()),
                namespace: Some(self.namespace.clone()),
                labels: Some([("app.kubernetes.io/name".to_string(), "roster".to_string())].into()),
                ..ObjectMeta::default()
            },
            spec: Some(spec),
        };
        self.api
            .create(&PostParams::default(), &lease)
            .await
            .map_err(classify)
    }

    /// Replaces the spec of `read` (a Lease as read or written last), guarded by its
    /// resourceVersion.
    ///
    /// # Errors
    /// `Conflict` when the Lease changed since `read`.
    pub async fn replace(&self, read: &Lease, spec: LeaseSpec) -> Result<Lease, LeaseError> {
        if read.metadata.resource_version.is_none() {
            return Err(LeaseError::Failed(
                "the Lease as read has no resourceVersion".into(),
            ));
        }
        let lease = Lease {
            metadata: read.metadata.clone(),
            spec: Some(spec),
        };
        self.api
            .replace(&self.name, &PostParams::default(), &lease)
            .await
            .map_err(classify)
    }
}

fn classify(error: kube::Error) -> LeaseError {
    match error {
        kube::Error::Api(status) => {
            let message = if status.message.is_empty() {
                status.reason.clone()
            } else {
                status.message.clone()
            };
            match status.code {
                409 => LeaseError::Conflict(message),
                404 => LeaseError::NotFound(message),
                401 | 403 => LeaseError::Denied {
                    status: status.code,
                    message,
                },
                code => LeaseError::Failed(format!("API server answered {code}: {message}")),
            }
        }
        // kube's transport errors carry no credentials; the chain says what failed.
        other => {
            let mut msg = other.to_string();
            let mut source = std::error::Error::source(&other);
            while let Some(s) = source {
                msg = format!("{msg}: {s}");
                source = s.source();
            }
            LeaseError::Failed(msg)
        }
    }
}
