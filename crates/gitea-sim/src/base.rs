//! Identifiers and small helpers every layer uses. A leaf: no other simulator module.

use std::sync::{Mutex, MutexGuard};

use serde_json::value::RawValue;

/// Identity of a logical action: the `id` of its original row (the one in the
/// repository feed). Its copies have other ids.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ActionId(pub i64);

/// Login of the user the configured token belongs to (`GET /api/v1/user`).
pub(crate) const TOKEN_USER: &str = "sourcer-bot";

/// Lock a mutex, ignoring poisoning (a panicking test hook must not wedge the server).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Serialize a `Value` to a `RawValue`.
pub(crate) fn raw(v: serde_json::Value) -> Box<RawValue> {
    // Serializing a `Value` cannot fail (its map keys are strings); fall back to null.
    serde_json::value::to_raw_value(&v).unwrap_or_else(|_| RawValue::NULL.to_owned())
}

pub(crate) fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = x;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}
