//! `roster-sandbox [ADDR] [--drivekit-driver ID]...`: serves the fake vendors until
//! interrupted, so roster can be tried without real vendor accounts. Default address
//! 127.0.0.1:8900; port 0 picks a free one. The first line on stderr says where it
//! listens (`roster-sandbox listening on http://ADDR`), once it does.
//!
//! `--drivekit-driver ID` signs a driver in to the DriveKit fake, as the mobile app
//! would: DriveKit drivers cannot be created through its admin API, so roster can only
//! link people whose driver has signed in.

use roster_sandbox::{Credentials, Sandbox};

const USAGE: &str = "usage: roster-sandbox [ADDR] [--drivekit-driver ID]...";

#[tokio::main]
async fn main() {
    let mut addr = "127.0.0.1:8900".to_string();
    let mut drivers = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--drivekit-driver" => match args.next() {
                Some(id) if !id.trim().is_empty() => drivers.push(id),
                _ => fail(&format!("--drivekit-driver needs a user id\n{USAGE}")),
            },
            "-h" | "--help" => {
                println!("{USAGE}");
                return;
            }
            a if a.starts_with('-') => fail(&format!("unknown option `{a}`\n{USAGE}")),
            a => a.clone_into(&mut addr),
        }
    }
    let Ok(addr) = addr.parse() else {
        fail(&format!("`{addr}` is not an ip:port address"));
    };
    let creds = Credentials::default();
    let sandbox = match Sandbox::start_on(addr, creds.clone()).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("roster-sandbox: cannot listen on {addr}: {e}");
            std::process::exit(1);
        }
    };
    for id in &drivers {
        sandbox.drivekit.sign_in(id);
    }
    eprintln!("roster-sandbox listening on http://{}", sandbox.addr);
    eprintln!(
        "  motive      base_url = {}  api_key = {}",
        sandbox.url("motive"),
        creds.motive_api_key
    );
    eprintln!(
        "  drivekit    base_url = {}  api_key = {}  drivers signed in: {}",
        sandbox.url("drivekit"),
        creds.drivekit_api_key,
        if drivers.is_empty() {
            "none".to_string()
        } else {
            drivers.join(", ")
        }
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

fn fail(message: &str) -> ! {
    eprintln!("roster-sandbox: {message}");
    std::process::exit(2);
}
