//! `CHAIN`: after the instance's role is contained, walk the stolen key's trail in CloudTrail.
//! Each role the key (or a key it led to) assumed gets the same deny-before-now, by the same
//! decision and write as the instance's role ([`revoke`]); each access key it created is
//! deactivated; calls that leave a way back in are listed for a person. The session keys found
//! are walked in turn, to `CHAIN_DEPTH` hops, each in the trail of the account it belongs to.
//!
//! A key's calls are read in every enabled region of that account (STS serves and logs a call in
//! the caller's region; IAM's global calls are logged in us-east-1), each region at CloudTrail's
//! rate, every page of the key's window ([`lookup`]). The window ends once the revocation that
//! denies the key has settled ([`crate::plan::chain::until`]), so the follow-up walks read the
//! same window again, not a longer one. What is not read (a region that fails, time that runs
//! out) leaves the walk incomplete, which the report says with the part of the window not read,
//! and the follow-up walks read again: a lookup never fails the containment.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use futures::future::join_all;

use crate::accounts::{Home, Reach};
use crate::api::ApiCall;
use crate::app::App;
use crate::aws::access_keys::{self, KeyState};
use crate::aws::clients::{Target, cloudtrail_in};
use crate::aws::cloudtrail::Lookup;
use crate::aws::ec2;
use crate::config::ChainMode;
use crate::error::Result;
use crate::gate::{self, Act, Case, Stolen, Verdict};
use crate::names::RoleName;
use crate::plan::chain::{Follow, follow, until};
use crate::policy::{cutoff_at, iso_millis};
use crate::report::chain::{ChainModeName, ChainNode, ChainReport, KeyRead, NodeStatus, TrailCall, Unread};
use crate::respond::establish::{self, Place};
use crate::respond::journal::Journal;
use crate::respond::lookup::{self, Window};
use crate::respond::revoke::{self, Written};
use crate::respond::tamper;
use crate::trail::{self, Call, RoleArn, TrailEvent};

/// The stolen key the walk starts from, and where.
pub struct Root<'a> {
    pub finding_id: &'a str,
    pub place: &'a Place,
    pub key: &'a str,
    /// The role the key is a session of: contained already.
    pub role: Option<&'a RoleName>,
    pub since: DateTime<Utc>,
    /// The cut-off in force on `role`: the key's calls are read until it has settled.
    pub cutoff: Option<DateTime<Utc>>,
}

/// One walk's context, and what it gathered besides the tree.
pub struct Walk<'a> {
    app: &'a App,
    home: &'a Home,
    root: &'a Root<'a>,
    dry_run: bool,
    steps: &'a Journal,
    seen: Vec<String>,
    regions: HashMap<String, Vec<String>>,
    attention: Vec<TrailCall>,
    skipped: Vec<String>,
    incomplete: Vec<String>,
    unread: Vec<Unread>,
    pages: usize,
    /// Tags deciding the response that a key of the chain wrote or removed, per (account, role).
    /// IAM does not tell role names apart by case: kept in lower case.
    tampered: HashMap<(String, String), Vec<tamper::Written>>,
}

/// What became of one key: its calls read, and the nodes for what they made.
struct Walked {
    read: Option<KeyRead>,
    children: Vec<ChainNode>,
}

/// Walk the trail from `root`; None while `CHAIN` is off.
pub async fn walk(app: &App, home: &Home, root: &Root<'_>, dry_run: bool, steps: &Journal) -> Option<ChainReport> {
    let mode = ChainModeName::of(app.config.chain.mode)?;
    let mut walk = Walk {
        app,
        home,
        root,
        dry_run,
        steps,
        seen: vec![root.key.to_owned()],
        regions: HashMap::new(),
        attention: Vec::new(),
        skipped: Vec::new(),
        incomplete: Vec::new(),
        unread: Vec::new(),
        pages: 0,
        tampered: HashMap::new(),
    };
    let end = until(root.cutoff, Utc::now());
    let walked = Box::pin(walk.key(root.key, &root.place.account, end, 0)).await;
    let root_node = ChainNode {
        key: root.key.to_owned(),
        account: root.place.account.clone(),
        role_arn: root
            .role
            .map(|r| format!("arn:{}:iam::{}:role/{r}", home.partition, root.place.account)),
        user: None,
        via: None,
        action: NodeStatus::Contained,
        detail: None,
        read: walked.read,
        children: walked.children,
    };
    Some(ChainReport {
        mode,
        depth: app.config.chain.depth,
        since: root.since,
        until: end,
        complete: walk.incomplete.is_empty() && walk.unread.is_empty(),
        incomplete: walk.incomplete,
        unread: walk.unread,
        pages: walk.pages,
        root: root_node,
        needs_attention: walk.attention,
        skipped: walk.skipped,
        follow_ups: Vec::new(),
    })
}

impl Walk<'_> {
    /// Read `key`'s calls in `account` until `end` and act on each; `depth` hops from the
    /// stolen key.
    async fn key(&mut self, key: &str, account: &str, end: DateTime<Utc>, depth: usize) -> Walked {
        let Some((events, pages)) = self.read(key, account, end).await else {
            return Walked {
                read: None,
                children: Vec::new(),
            };
        };
        let read = KeyRead {
            events: events.len(),
            pages,
            until: end,
        };
        // Before acting on any: a tag the key wrote on a role it also assumed is not honoured.
        for event in &events {
            if let Call::RoleTags { role, keys } = &event.call {
                let written = keys.iter().filter(|t| tamper::decides_response(t, &self.app.config));
                let entry = (self
                    .tampered
                    .entry((account.to_owned(), role.as_str().to_ascii_lowercase())))
                .or_default();
                entry.extend(written.map(|tag| tamper::Written {
                    tag: tag.clone(),
                    event_id: event.id.clone(),
                }));
            }
        }
        let mut children = Vec::new();
        for event in events {
            let issued_by = event.issued_by();
            let via = TrailCall {
                event_id: event.id.clone(),
                event_name: event.name.clone(),
                at: event.at,
                region: event.region.clone(),
                key: key.to_owned(),
                account: account.to_owned(),
            };
            match event.call {
                Call::AssumedRole {
                    role,
                    role_id,
                    session_key,
                } => {
                    let (action, detail, cutoff) = self
                        .contain_role(&role, role_id.as_deref(), issued_by, &session_key)
                        .await;
                    let node = ChainNode {
                        account: role.account.clone(),
                        role_arn: Some(role.arn()),
                        ..node(session_key, via, (action, detail))
                    };
                    let end = until(cutoff, Utc::now());
                    children.push(Box::pin(self.follow(node, end, depth)).await);
                }
                Call::CreatedKey { user, key: created } => {
                    let (action, detail) = self.deactivate(account, &user, &created).await;
                    let node = ChainNode {
                        account: account.to_owned(),
                        user: Some(user),
                        ..node(created, via, (action, detail))
                    };
                    // A deactivated key is refused from now: its window ends when it is read.
                    children.push(Box::pin(self.follow(node, Utc::now(), depth)).await);
                }
                Call::Persistence | Call::RoleTags { .. } => self.attention.push(via),
                Call::Other => {}
            }
        }
        Walked {
            read: Some(read),
            children,
        }
    }

    /// Walk the node's own key in turn until `end`, unless seen already or too deep.
    async fn follow(&mut self, mut node: ChainNode, end: DateTime<Utc>, depth: usize) -> ChainNode {
        match follow(&node.key, depth, self.app.config.chain.depth, &self.seen) {
            Follow::Seen => {
                node.detail = Some(join(node.detail, "its key is already in the chain: not walked again"));
                if node.action == NodeStatus::AlreadyRevoked || node.action == NodeStatus::AlreadyInactive {
                    node.action = NodeStatus::Seen;
                }
            }
            Follow::TooDeep => {
                let depth = self.app.config.chain.depth;
                node.detail = Some(join(
                    node.detail,
                    &format!("CHAIN_DEPTH {depth} reached: its key's own calls were not read"),
                ));
            }
            Follow::Walk => {
                self.seen.push(node.key.clone());
                let walked = Box::pin(self.key(&node.key, &node.account, end, depth + 1)).await;
                node.read = walked.read;
                node.children = walked.children;
            }
        }
        node
    }

    /// Every record signed with `key` in `account`'s trail until `end`, checked, and the pages
    /// read; None if the account is not reached. A record that fails a check is listed as skipped.
    async fn read(&mut self, key: &str, account: &str, end: DateTime<Utc>) -> Option<(Vec<TrailEvent>, usize)> {
        let target = match self.target(account).await {
            Ok((_, target)) => target,
            Err(why) => {
                self.incomplete
                    .push(format!("key {key}'s trail in account {account} was not read: {why}"));
                return None;
            }
        };
        let regions = match self.regions.get(account) {
            Some(regions) => regions.clone(),
            None => {
                let listed = self
                    .steps
                    .run(ApiCall::DescribeRegions, account, ec2::enabled_regions(&target.ec2))
                    .await;
                match listed {
                    Ok(regions) => self.regions.entry(account.to_owned()).or_insert(regions).clone(),
                    Err(e) => {
                        self.incomplete
                            .push(format!("account {account}'s regions were not listed: {e}"));
                        return None;
                    }
                }
            }
        };
        let (since, pace, steps) = (self.root.since, &self.app.trail_pace, self.steps);
        let reads = regions.iter().map(|region| {
            let window = Window {
                account,
                region,
                lookup: Lookup::AccessKeyId(key),
                since,
                until: end,
                pages: None,
            };
            let client = cloudtrail_in(&target.cloudtrail, region);
            async move { (region, lookup::window(&client, pace, steps, window).await) }
        });
        let mut events = Vec::new();
        let mut pages = 0;
        for (region, read) in join_all(reads).await {
            pages += read.pages;
            events.extend((read.events.into_iter()).filter_map(|e| self.checked(&e.id, e.record, key, account)));
            if let Some(left) = read.unread {
                tracing::warn!(key, account, region, ?left, "part of a key's window not read");
                self.unread.push(Unread {
                    key: key.to_owned(),
                    account: account.to_owned(),
                    region: region.clone(),
                    from: left.from,
                    to: left.to,
                    why: left.why,
                    transient: left.transient,
                });
            }
        }
        self.pages += pages;
        events.sort_by(|a: &TrailEvent, b| (a.at, &a.id).cmp(&(b.at, &b.id)));
        events.dedup_by(|a, b| a.id == b.id);
        Some((events, pages))
    }

    fn checked(&mut self, id: &str, raw: Option<String>, key: &str, account: &str) -> Option<TrailEvent> {
        let Some(raw) = raw else {
            self.skipped
                .push(format!("event {id}: LookupEvents gave no CloudTrailEvent"));
            return None;
        };
        match trail::read(&raw, key, account) {
            Ok(event) => Some(event),
            Err(why) => {
                tracing::warn!(%why, "a trail record not acted on");
                self.skipped.push(why);
                None
            }
        }
    }

    /// The account's clients (our own or the member role's), or why it is not ours to act in.
    async fn target(&self, account: &str) -> Result<(Reach, Target), String> {
        let place = Place {
            account: account.to_owned(),
            region: self.root.place.region.clone(),
        };
        let reach = establish::route(self.app, self.home, &place)?;
        let target = establish::reach(self.app, &reach, &place, self.root.finding_id)
            .await
            .map_err(|e| e.to_string())?;
        Ok((reach, target))
    }

    /// Revoke the sessions of a role the chain assumed: the gate rules on it as on the instance's
    /// role, its session taken as issued by `issued_by` ([`TrailEvent::issued_by`]), without the
    /// tags a key of the chain wrote on it ([`tamper`]). Another partition's role cannot be
    /// reached from ours.
    async fn contain_role(
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
        let finding_id = self.root.finding_id;
        let written = revoke::write(self.app, &target.iam, permit, (finding_id, None), self.steps).await;
        written_status(written, role)
    }

    /// Deactivate an access key the chain created (never delete it).
    async fn deactivate(&self, account: &str, user: &str, key: &str) -> (NodeStatus, Option<String>) {
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

fn node(key: String, via: TrailCall, (action, detail): (NodeStatus, Option<String>)) -> ChainNode {
    ChainNode {
        key,
        account: String::new(),
        role_arn: None,
        user: None,
        via: Some(via),
        action,
        detail,
        read: None,
        children: Vec::new(),
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

fn join(detail: Option<String>, more: &str) -> String {
    match detail {
        Some(d) => format!("{d}; {more}"),
        None => more.to_owned(),
    }
}
