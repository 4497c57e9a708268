//! gitea-nats-sourcer (module map filled in below).

pub mod simulator;
