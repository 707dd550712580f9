//! A user's access keys: whether one is active, and deactivating it. Keys are never deleted here:
//! an inactive key can be looked at, and reactivated by a person who finds it was not the
//! attacker's.

use aws_sdk_iam::Client;
use aws_sdk_iam::types::StatusType;

use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyState {
    Active,
    Inactive,
    /// The user has no such key (deleted since), or the user is gone.
    Gone,
}

/// The state of `key` among `user`'s keys (a user has at most two).
pub async fn state(iam: &Client, user: &str, key: &str) -> Result<KeyState> {
    let out = match iam.list_access_keys().user_name(user).send().await {
        Ok(out) => out,
        Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_entity_exception()) => return Ok(KeyState::Gone),
        Err(e) => return Err(Error::aws("iam", "ListAccessKeys", e)),
    };
    let found = out
        .access_key_metadata()
        .iter()
        .find(|k| k.access_key_id() == Some(key));
    // A status IAM did not state is taken as active: deactivating an inactive key changes nothing.
    Ok(match found.map(|k| k.status()) {
        None => KeyState::Gone,
        Some(Some(StatusType::Inactive)) => KeyState::Inactive,
        Some(_) => KeyState::Active,
    })
}

/// `UpdateAccessKey Status=Inactive`.
pub async fn deactivate(iam: &Client, user: &str, key: &str) -> Result<()> {
    iam.update_access_key()
        .user_name(user)
        .access_key_id(key)
        .status(StatusType::Inactive)
        .send()
        .await
        .map(|_| ())
        .map_err(|e| Error::aws("iam", "UpdateAccessKey", e))
}
