//! One integration test binary (faster to build than one per file).

mod common;
mod crash;
mod daemon;
mod lifecycle;
mod motive_faults;
mod safety;
