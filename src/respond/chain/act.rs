//! What the walk does about what it found: a role's sessions revoked through the gate, as the
//! instance's role's are, or a created key deactivated; and what each node then says.

use chrono::{DateTime, Utc};

use std::collections::HashMap;

use crate::accounts::{Home, Reach};
use crate::api::ApiCall;
use crate::app::App;
use crate::aws::access_keys::{self, KeyState};
use crate::aws::clients::Target;
use crate::config::ChainMode;
use crate::error::Result;
use crate::gate::{self, Act, Case, Stolen, Verdict};
use crate::policy::{cutoff_at, iso_millis};
use crate::report::chain::NodeStatus;
use crate::respond::establish::{self, Place};
use crate::respond::journal::Journal;
use crate::respond::revoke::{self, Written};
use crate::respond::tamper;
use crate::trail::RoleArn;

/// What the walk acts with, in the finding's name.
pub(super) struct Acting<'a> {
    pub app: &'a App,
    pub home: &'a Home,
    pub finding_id: &'a str,
    /// The finding's region, where another account is reached.
    pub region: &'a str,
    pub dry_run: bool,
    pub steps: &'a Journal,
    /// Tags deciding the response that a key of the chain wrote or removed, per (account, role
    /// in lower case: IAM does not tell role names apart by case).
    pub tampered: &'a HashMap<(String, String), Vec<tamper::Written>>,
}

impl Acting<'_> {
    /// The account's clients (our own or the member role's), or why it is not ours to act in.
    pub(super) async fn target(&self, account: &str) -> std::result::Result<(Reach, Target), String> {
        let place = Place {
            account: account.to_owned(),
            region: self.region.to_owned(),
        };
        let reach = establish::route(self.app, self.home, &place)?;
        let target = establish::reach(self.app, &reach, &place, self.finding_id)
            .await
            .map_err(|e| e.to_string())?;
        Ok((reach, target))
    }

    /// Revoke the sessions of a role the chain assumed: the gate rules on it as on the instance's
    /// role, its session taken as issued by `issued_by` ([`TrailEvent::issued_by`]), without the
    /// tags a key of the chain wrote on it ([`tamper`]). Another partition's role cannot be
    /// reached from ours.
    pub(super) async fn contain_role(
        &self,
        role: &RoleArn,
        role_id: Option<&str>,
        issued_by: DateTime<Utc>,
        key: &str,
    ) -> (NodeStatus, Option<String>, Option<DateTime<Utc>>) {
        if self.app.config.chain.mode == ChainMode::Report {
            return (NodeStatus::Found, Some("CHAIN=report: not revoked".into()), None);
        }
        if role.partition != self.home.partition {
            return uncut(refused(format!(
                "role {} is in partition {}, not ours",
                role.arn(),
                role.partition
            )));
        }
        let (reach, target) = match self.target(&role.account).await {
            Ok(reached) => reached,
            Err(why) => return uncut(refused(why)),
        };
        let read = revoke::read_role(&target.iam, &role.name, self.steps);
        let (read, own_role) = tokio::join!(read, self.app.own_role(&reach, self.home));
        let (mut read, own_role) = match (read, own_role) {
            (Ok(read), Ok(own)) => (read, own),
            (Err(e), _) | (_, Err(e)) => return (NodeStatus::Failed, Some(e.to_string()), None),
        };
        let mut notes = Vec::new();
        if let Some(written) = (self.tampered).get(&(role.account.clone(), role.name.as_str().to_ascii_lowercase()))
            && let Some(facts) = read.role.take()
        {
            let (facts, said) = tamper::discount(facts, written);
            (read.role, notes) = (Some(facts), said);
        }
        let stolen = Stolen {
            role_id,
            first_seen: Some(issued_by),
            key: Some(key),
            last_seen: None,
            periodic: false,
        };
        let (action, detail, cutoff) = self.rule(role, stolen, &target, read, own_role).await;
        notes.extend(detail);
        (action, (!notes.is_empty()).then(|| notes.join("; ")), cutoff)
    }

    /// The gate's ruling on a chain role, and its write.
    async fn rule(
        &self,
        role: &RoleArn,
        stolen: Stolen<'_>,
        target: &Target,
        read: revoke::RoleRead,
        own_role: Option<String>,
    ) -> (NodeStatus, Option<String>, Option<DateTime<Utc>>) {
        let case = Case {
            role_name: &role.name,
            role: read.role.as_ref(),
            in_force: &read.in_force,
            stolen,
            own_role: own_role.as_deref(),
            member_role: self.app.config.member_role_name.as_deref(),
            protected_roles: &self.app.config.protected_roles,
            now: cutoff_at(Utc::now()),
            dry_run: self.dry_run,
        };
        let permit = match gate::decide(&case).0 {
            Verdict::Act(_, Act::Write(permit)) => permit,
            Verdict::Missing(why) => return (NodeStatus::Gone, Some(why), None),
            Verdict::Refuse(_, why) => return uncut(refused(why)),
            Verdict::Act(_, Act::Keep(kept)) => {
                let covers = format!("cut-off {} covers the session", iso_millis(kept.cutoff));
                return (NodeStatus::AlreadyRevoked, Some(covers), Some(kept.cutoff));
            }
            Verdict::Act(_, Act::Plan(planned)) => {
                revoke::plan(&role.name, planned.clone(), self.steps);
                let plan = format!("deny sessions issued before {}", iso_millis(planned.cutoff));
                return (NodeStatus::Planned, Some(plan), None);
            }
        };
        let finding_id = self.finding_id;
        let written = revoke::write(self.app, &target.iam, permit, (finding_id, None), self.steps).await;
        written_status(written, role)
    }

    /// Deactivate an access key the chain created (never delete it).
    pub(super) async fn deactivate(&self, account: &str, user: &str, key: &str) -> (NodeStatus, Option<String>) {
        if self.app.config.chain.mode == ChainMode::Report {
            return (NodeStatus::Found, Some("CHAIN=report: not deactivated".into()));
        }
        let target = match self.target(account).await {
            Ok((_, target)) => target,
            Err(why) => return refused(why),
        };
        let state = self.steps.run(
            ApiCall::ListAccessKeys,
            user,
            access_keys::state(&target.iam, user, key),
        );
        match state.await {
            Ok(state) if !crate::plan::chain::deactivate(state) => {
                let why = if state == KeyState::Gone {
                    "deleted since"
                } else {
                    "already inactive"
                };
                (NodeStatus::AlreadyInactive, Some(why.into()))
            }
            Ok(_) if self.dry_run => {
                self.steps
                    .planned(ApiCall::UpdateAccessKey, key, format!("deactivate user {user}'s key"));
                (NodeStatus::Planned, Some("deactivate".into()))
            }
            Ok(_) => match self
                .steps
                .run(
                    ApiCall::UpdateAccessKey,
                    key,
                    access_keys::deactivate(&target.iam, user, key),
                )
                .await
            {
                Ok(()) => (NodeStatus::Deactivated, None),
                Err(e) => (
                    NodeStatus::Failed,
                    Some(format!("user {user}'s key {key} is still ACTIVE: {e}")),
                ),
            },
            Err(e) => (
                NodeStatus::Failed,
                Some(format!("user {user}'s key {key} was not read: {e}")),
            ),
        }
    }
}

/// What became of a chain role's revocation write, for its node.
fn written_status(written: Result<Written>, role: &RoleArn) -> (NodeStatus, Option<String>, Option<DateTime<Utc>>) {
    match written {
        Ok(Written::Adopted { cutoff: theirs, .. }) => (
            NodeStatus::AlreadyRevoked,
            Some(format!("another run's cut-off {}", iso_millis(theirs))),
            Some(theirs),
        ),
        Ok(Written::Ours {
            cutoff,
            unclaimed: None,
            ..
        }) => (
            NodeStatus::Revoked,
            Some(format!("sessions issued before {} denied", iso_millis(cutoff))),
            Some(cutoff),
        ),
        Ok(Written::Ours {
            cutoff,
            unclaimed: Some(why),
            ..
        }) => (
            NodeStatus::Revoked,
            Some(format!(
                "sessions issued before {} denied, written without a claim ({why})",
                iso_millis(cutoff)
            )),
            Some(cutoff),
        ),
        Err(e) => (
            NodeStatus::Failed,
            Some(format!("role {}'s sessions were NOT revoked: {e}", role.arn())),
            None,
        ),
    }
}
fn refused(why: String) -> (NodeStatus, Option<String>) {
    tracing::warn!(%why, "a role or key in the chain was not changed");
    (NodeStatus::Refused, Some(why))
}

/// Nothing denies the key: its window ends when it is read.
fn uncut((action, detail): (NodeStatus, Option<String>)) -> (NodeStatus, Option<String>, Option<DateTime<Utc>>) {
    (action, detail, None)
}
