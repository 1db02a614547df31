//! One integration test binary (faster to build than one per file), with one harness
//! (`common`).

// Test helpers fail the test by panicking; that is what they are for.
#![allow(clippy::panic, clippy::unwrap_used)]

mod common;
mod crash;
mod create_only;
mod daemon;
mod dates;
mod four_vendors;
mod layers;
mod lifecycle;
mod motive_faults;
mod outbound;
mod pacing;
mod safety;
mod slapd;
mod source_http;
mod source_ldap;
mod source_scim;
mod throttling;
mod vendor_drivekit;
mod vendor_rocketchat;
mod vendor_telematics;
