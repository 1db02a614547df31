//! `roster-sandbox [ADDR]`: serves the fake vendors until interrupted, so roster can be
//! tried without real vendor accounts. Default address 127.0.0.1:8900.

use roster_sandbox::{Credentials, Sandbox};

#[tokio::main]
async fn main() {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8900".to_string());
    let addr = match addr.parse() {
        Ok(a) => a,
        Err(_) => {
            eprintln!("roster-sandbox: `{addr}` is not an ip:port address");
            std::process::exit(2);
        }
    };
    let creds = Credentials::default();
    let sandbox = match Sandbox::start_on(addr, creds.clone()).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("roster-sandbox: cannot listen on {addr}: {e}");
            std::process::exit(1);
        }
    };
    eprintln!("roster-sandbox listening on http://{}", sandbox.addr);
    eprintln!(
        "  motive      base_url = {}  api_key = {}",
        sandbox.url("motive"),
        creds.motive_api_key
    );
    eprintln!(
        "  drivekit    base_url = {}  api_key = {}",
        sandbox.url("drivekit"),
        creds.drivekit_api_key
    );
    eprintln!(
        "  telematics  base_url = {}  email = {}",
        sandbox.url("telematics"),
        creds.telematics_email
    );
    eprintln!(
        "  rocketchat  base_url = {}  user_id = {}",
        sandbox.url("rocketchat"),
        creds.rocketchat_user_id
    );
    eprintln!(
        "  scim source  base_url = http://{}/scim/v2  token = {}",
        sandbox.addr, creds.scim_token
    );
    eprintln!(
        "  http source  url = http://{}/hr/v2/employees  auth_value = Bearer {}",
        sandbox.addr, creds.hr_token
    );
    eprintln!(
        "  http source, OAuth2  token_url = http://{}/hr/oauth/token  client_id = {}  client_secret = {}",
        sandbox.addr, creds.hr_client_id, creds.hr_client_secret
    );
    eprintln!(
        "  notify      slack url = {}  webhook url = {}",
        sandbox.slack_webhook_url(&creds),
        sandbox.webhook_url(&creds)
    );
    let _ = tokio::signal::ctrl_c().await;
}
