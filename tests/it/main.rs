//! One integration test binary (faster to build than one per file), with one harness
//! (`common`).

// Test helpers fail the test by panicking; that is what they are for.
#![allow(clippy::panic, clippy::unwrap_used)]

mod admin;
mod common;
mod crash;
mod create_only;
mod daemon;
mod dates;
mod disk_full;
mod four_vendors;
mod ha;
mod identity;
mod interrupt;
mod layers;
mod lifecycle;
mod motive_faults;
mod notify;
mod outbound;
mod output;
mod pacing;
mod reload;
mod safety;
mod slapd;
mod source_http;
mod source_http_oauth2;
mod source_ldap;
mod source_scim;
mod source_scim_groups;
mod throttling;
mod vendor_drivekit;
mod vendor_rocketchat;
mod vendor_telematics;
