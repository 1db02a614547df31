//! One integration test binary (faster to build than one per file).

mod common;
mod crash;
mod daemon;
mod four_vendors;
mod ha;
mod lifecycle;
mod motive_faults;
mod pacing;
mod safety;
mod slapd;
mod source_http;
mod source_ldap;
mod source_scim;
