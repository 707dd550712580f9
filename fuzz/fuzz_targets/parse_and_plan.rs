//! The event parser and the planner on arbitrary input: whatever the bytes, parsing ends in a
//! value or an error, and planning what it yields never panics. Run: see README, Reliability.
#![no_main]

use chrono::{DateTime, Duration, Utc};
use exfil_responder::config::Config;
use exfil_responder::finding::{Subject, Triage};
use exfil_responder::input::parse_payload;
use exfil_responder::gate::{self, Case, Stolen};
use exfil_responder::names::RoleName;
use exfil_responder::plan::{self, Association, FleetFacts, InstanceFacts, RoleFacts};
use exfil_responder::policy::{Existing, InForce, read_cutoff};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Bytes that are not JSON still exercise the policy reader, which takes IAM's text.
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = read_cutoff(text);
    }
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    let Ok(payload) = parse_payload(value) else {
        return;
    };
    for item in payload.items {
        let Ok(Triage::Act(incident)) = item else { continue };
        let (role, instance) = match &incident.subject {
            Subject::Finding { role, instance, .. } => (role.to_string(), instance.clone()),
            Subject::Role(role) => (role.to_string(), None),
            Subject::Instance(id) => ("Unknown".to_owned(), Some(id.clone())),
        };
        let now: DateTime<Utc> = "2026-11-22T10:00:07.250Z".parse().unwrap();
        let facts = RoleFacts {
            name: role.clone(),
            arn: format!("arn:aws:iam::123456789012:role/{role}"),
            id: "AROAFUZZ".into(),
            path: "/".into(),
            tags: Default::default(),
        };
        let name = RoleName::parse(&role).unwrap_or_else(|_| RoleName::parse("Unknown").unwrap());
        for existing in [None, Some(Existing::Cutoff(now - Duration::hours(1))), Some(Existing::Cutoff(now))] {
            let in_force = InForce {
                inline: existing,
                managed: None,
            };
            let _ = gate::decide(&Case {
                role_name: &name,
                role: Some(&facts),
                in_force: &in_force,
                stolen: Stolen {
                    role_id: None,
                    first_seen: incident.first_seen,
                    key: incident.summary.access_key_id.as_deref(),
                    last_seen: incident.last_seen,
                },
                own_role: None,
                member_role: None,
                protected_roles: &[],
                now,
                dry_run: false,
            });
        }
        let profile = "arn:aws:iam::123456789012:instance-profile/P".to_owned();
        // The payload's own words become the instances' tags, states and markers.
        let words: Vec<String> = serde_json::to_string(&incident.summary)
            .unwrap_or_default()
            .split('"')
            .map(str::to_owned)
            .collect();
        let sibling = |i: usize| InstanceFacts {
            id: format!("i-{i:017x}"),
            region: "us-east-1".into(),
            state: words.get(i).cloned().unwrap_or_else(|| "running".into()),
            tags: words
                .chunks(2)
                .filter_map(|kv| Some((kv.first()?.clone(), kv.get(1)?.clone())))
                .collect(),
            association: (i % 2 == 0).then(|| Association {
                id: format!("iip-assoc-{i}"),
                profile_arn: profile.clone(),
                state: "associated".into(),
                since: None,
            }),
            http_tokens: words.get(i + 1).cloned(),
        };
        let siblings: Vec<InstanceFacts> = (0..4).map(sibling).collect();
        let named = instance.as_ref().map(|id| InstanceFacts {
            id: id.to_string(),
            ..sibling(4)
        });
        // The opt-in steps too: evidence before an isolation, IMDSv2 first.
        let config = Config {
            forensic_snapshots: true,
            require_imdsv2: true,
            ..Config::default()
        };
        let profiles = [profile.clone()];
        let _ = plan::instances(&FleetFacts {
            config: &config,
            cutoff: now,
            finding_id: incident.finding_id(),
            role_name: &role,
            role_tags: &Default::default(),
            role_profiles: &profiles,
            named: instance.as_ref().map(|id| (id.as_str(), named.as_ref())),
            siblings: &siblings,
            action_override: incident.action_override,
            observed_at: now,
        });
    }
});
