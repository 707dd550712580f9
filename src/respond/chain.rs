//! `CHAIN`: after the instance's role is contained, walk the stolen key's trail in CloudTrail.
//! Each role the key (or a key it led to) assumed gets the same deny-before-now, by the same
//! decision and write as the instance's role ([`act`], through [`crate::respond::revoke`]); each
//! access key it created is deactivated; calls that leave a way back in are listed for a person. The session keys found
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

use crate::accounts::Home;
use crate::api::ApiCall;
use crate::app::App;
use crate::aws::clients::cloudtrail_in;
use crate::aws::cloudtrail::{Lookup, Span};
use crate::aws::ec2;
use crate::names::RoleName;
use crate::plan::chain::{Follow, follow, until};
use crate::report::chain::{ChainModeName, ChainNode, ChainReport, KeyRead, NodeStatus, TrailCall, Unread};
use crate::respond::establish::Place;
use crate::respond::journal::Journal;
use crate::respond::lookup::{self, Window};
use crate::respond::tamper;
use crate::trail::{self, Call, TrailEvent};

mod act;
use act::Acting;

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
                        .acting()
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
                    let (action, detail) = self.acting().deactivate(account, &user, &created).await;
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
        let target = match self.acting().target(account).await {
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
            let span = Span {
                account,
                region,
                lookup: Lookup::AccessKeyId(key),
                since,
                until: end,
            };
            let window = Window { span, pages: None };
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

    /// What the walk acts with: [`act`] changes what it found.
    fn acting(&self) -> Acting<'_> {
        Acting {
            app: self.app,
            home: self.home,
            finding_id: self.root.finding_id,
            region: &self.root.place.region,
            dry_run: self.dry_run,
            steps: self.steps,
            tampered: &self.tampered,
        }
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

fn join(detail: Option<String>, more: &str) -> String {
    match detail {
        Some(d) => format!("{d}; {more}"),
        None => more.to_owned(),
    }
}
