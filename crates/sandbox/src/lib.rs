//! roster's vendor sandbox: stateful fakes of the vendors' user APIs, faithful to
//! `shared/vendors/` (auth, validation, error bodies, rate limits), served from one
//! HTTP server with one path prefix per vendor.
//!
//! Used two ways: by roster's tests (in process, `Sandbox::start`, with direct access to
//! each fake's state and fault injection) and by people trying roster
//! (`roster-sandbox` binary). It deliberately shares no code with roster, so a connector
//! that passes against it has not simply agreed with itself.

// Handlers return `Result<Response, Response>`: the error side is an HTTP reply like
// the success side, as axum intends, so its size is not a concern.
#![allow(clippy::result_large_err)]

mod clock;
pub mod control;
pub mod drivekit;
pub mod hr;
pub mod kube;
pub mod motive;
pub mod oauth;
pub mod rocketchat;
pub mod scim;
pub mod telematics;
pub mod webhooks;

use std::net::SocketAddr;

use axum::Router;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

pub use control::{Call, Control, Fault, StormReply};

/// The credentials each fake accepts.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub motive_api_key: String,
    pub motive_token: String,
    pub drivekit_api_key: String,
    pub telematics_email: String,
    pub telematics_password: String,
    pub telematics_instance_id: String,
    pub telematics_instance_key: String,
    pub rocketchat_user_id: String,
    pub rocketchat_auth_token: String,
    /// Bearer token of the SCIM service provider fake (`/scim`).
    pub scim_token: String,
    /// Bearer token of the HR API fake (`/hr`).
    pub hr_token: String,
    /// The OAuth2 client of the HR fake's token endpoint (`/hr/oauth/token`), whose
    /// tokens the HR API accepts too.
    pub hr_client_id: String,
    pub hr_client_secret: String,
    /// `TEAM/BOT/SECRET` of the Slack incoming-webhook fake (`/hooks/slack/services/…`).
    pub slack_webhook_path: String,
    /// The path token of the generic webhook receiver (`/hooks/webhook/TOKEN`).
    pub webhook_token: String,
}

impl Default for Credentials {
    /// The well-known sandbox credentials (also in `examples/roster.toml`).
    fn default() -> Self {
        Self {
            motive_api_key: "sandbox-motive-key".into(),
            motive_token: "sandbox-motive-oauth-token".into(),
            drivekit_api_key: "sandbox-drivekit-key".into(),
            telematics_email: "admin@sandbox.test".into(),
            telematics_password: "sandbox-telematics-password".into(),
            telematics_instance_id: "5a3c1e2f-0000-4000-8000-000000000001".into(),
            telematics_instance_key: "5a3c1e2f-0000-4000-8000-0000000000ff".into(),
            rocketchat_user_id: "SandboxAdmin0001".into(),
            rocketchat_auth_token: "sandbox-rocketchat-pat".into(),
            scim_token: "sandbox-scim-bearer-token".into(),
            hr_token: "sandbox-hr-bearer-token".into(),
            hr_client_id: "roster-sandbox-client".into(),
            hr_client_secret: "sandbox-hr-client-secret".into(),
            slack_webhook_path: "T0SANDBOX/B0SANDBOX/sandbox-slack-webhook-secret".into(),
            webhook_token: "sandbox-webhook-token".into(),
        }
    }
}

/// A running sandbox. Dropping it stops the server.
pub struct Sandbox {
    pub addr: SocketAddr,
    pub motive: motive::Motive,
    pub drivekit: drivekit::DriveKit,
    pub telematics: telematics::Telematics,
    pub rocketchat: rocketchat::RocketChat,
    /// A SCIM 2.0 service provider, a source (`/scim`, base_url `…/scim/v2`).
    pub scim: scim::Scim,
    /// An HR system's JSON API, a source (`/hr`).
    pub hr: hr::Hr,
    /// Alert receivers: Slack's incoming webhook and a generic JSON webhook (`/hooks`).
    pub hooks: webhooks::Webhooks,
    task: JoinHandle<()>,
}

impl Sandbox {
    /// Starts on a free loopback port.
    ///
    /// # Errors
    /// If no port can be bound.
    pub async fn start(creds: Credentials) -> std::io::Result<Self> {
        Self::start_on("127.0.0.1:0".parse().expect("literal address"), creds).await
    }

    /// Starts on the given address.
    ///
    /// # Errors
    /// If the address cannot be bound.
    pub async fn start_on(addr: SocketAddr, creds: Credentials) -> std::io::Result<Self> {
        let motive = motive::Motive::new(&creds.motive_api_key, &creds.motive_token);
        let drivekit = drivekit::DriveKit::new(&creds);
        let telematics = telematics::Telematics::new(&creds);
        let rocketchat = rocketchat::RocketChat::new(&creds);
        let scim = scim::Scim::new(&creds.scim_token);
        let hr = hr::Hr::new(
            &creds.hr_token,
            oauth::TokenServer::new(&creds.hr_client_id, &creds.hr_client_secret, hr::SCOPES),
        );
        let hooks = webhooks::Webhooks::new(&creds.slack_webhook_path, &creds.webhook_token);
        let app = Router::new()
            .nest("/motive", motive.router())
            .nest("/drivekit", drivekit.router())
            .nest("/telematics", telematics.router())
            .nest("/rocketchat", rocketchat.router())
            .nest("/scim", scim.router())
            .nest("/hr", hr.router())
            .nest("/hooks", hooks.router());
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        // As vendors' front ends do: without it, a reply written in two parts can wait for
        // the client's delayed ACK (Nagle), adding up to 40 ms to a call at random.
        let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
            let _ = tcp.set_nodelay(true);
        });
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self {
            addr,
            motive,
            drivekit,
            telematics,
            rocketchat,
            scim,
            hr,
            hooks,
            task,
        })
    }

    /// The `url` of a `[[notify]]` target of type `slack` (its secret included).
    pub fn slack_webhook_url(&self, creds: &Credentials) -> String {
        format!(
            "http://{}/hooks/slack/services/{}",
            self.addr, creds.slack_webhook_path
        )
    }

    /// The `url` of a `[[notify]]` target of type `webhook` (its token included).
    pub fn webhook_url(&self, creds: &Credentials) -> String {
        format!("http://{}/hooks/webhook/{}", self.addr, creds.webhook_token)
    }

    /// The `base_url` to give roster for a vendor (`motive`, …).
    pub fn url(&self, vendor: &str) -> String {
        format!("http://{}/{vendor}", self.addr)
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        self.task.abort();
    }
}
