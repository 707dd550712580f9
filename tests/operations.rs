//! After containment, against the moto server: a role's release and an isolated instance's
//! restore, run through the handler's manual payload with the real SDK clients, checked against
//! the state left in the emulator and the writes that were sent.
//!
//! moto does not evaluate `aws:TokenIssueTime`: these tests check which documents are removed and
//! which profile is attached, not which sessions work.

mod support;

use chrono::{Duration, SecondsFormat, Utc};
use exfil_responder::Config;
use exfil_responder::policy::{FALLBACK_PATH, document, fallback_name};
use serde_json::{Value, json};
use support::*;

const KEY: &str = "exfil-responder:action";
const ISOLATED_AT: &str = "exfil-responder:isolated-at";
const PROFILE: &str = "exfil-responder:profile";

impl World {
    fn release(&self, extra: Value) -> Value {
        let mut payload = json!({"operation": "release", "roleName": self.role.name, "requestedBy": "alice"});
        payload
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        payload
    }
}

#[tokio::test]
async fn a_release_waits_out_the_hold_unless_forced_with_a_reason_and_records_what_it_removed() {
    let w = World::start().await;
    let named = w.account.instance(Some(&w.role.profile_arn), &[]).await;
    let (contained, ok) = w
        .run(finding("outside-aws.json", &w.role, Some(&named)), Config::default())
        .await;
    assert!(ok, "{contained:#}");
    let cutoff = contained["cutoff"]["at"].as_str().unwrap().to_owned();
    w.recorder.clear();

    let (early, ok) = w.run(w.release(json!({})), Config::default()).await;
    assert!(ok, "{early:#}");
    assert_skipped_without_writes(&early, &w.recorder, "safe to release from");
    assert!(w.account.revocation(&w.role.name).await.is_some());

    let (forced, ok) = w
        .run(
            w.release(json!({"force": true, "reason": "IR-9: wrong role revoked"})),
            Config::default(),
        )
        .await;
    assert!(ok, "{forced:#}");
    assert_eq!(forced["outcome"], "released", "{forced:#}");
    assert_eq!(w.recorder.writes(), ["DeleteRolePolicy"]);
    assert_eq!(w.account.revocation(&w.role.name).await, None);
    let op = &forced["operation"];
    assert_eq!(
        (op["name"].as_str(), op["forced"].as_bool()),
        (Some("release"), Some(true))
    );
    assert_eq!(op["requestedBy"], "alice");
    assert_eq!(forced["requestReason"], "IR-9: wrong role revoked");
    let removed = &op["documents"][0];
    assert_eq!(removed["holder"]["kind"], "inline");
    let cutoff_ms: chrono::DateTime<Utc> = cutoff.parse().unwrap();
    assert_eq!(
        removed["cutoff"]
            .as_str()
            .unwrap()
            .parse::<chrono::DateTime<Utc>>()
            .unwrap(),
        cutoff_ms
    );
    assert_eq!(
        removed["document"]["Statement"][0]["Condition"]["DateLessThan"]["aws:TokenIssueTime"],
        cutoff_ms.to_rfc3339_opts(SecondsFormat::Millis, true)
    );
    assert!(removed["removedAt"].is_string(), "{removed}");

    // Released already: nothing left to remove.
    w.recorder.clear();
    let (again, _) = w.run(w.release(json!({})), Config::default()).await;
    assert_skipped_without_writes(&again, &w.recorder, "holds no revocation");
}

#[tokio::test]
async fn after_the_hold_a_release_needs_no_force_and_a_dry_run_only_plans_it() {
    let w = World::start().await;
    w.account.revoked_hours_ago(&w.role.name, 13).await;

    let (planned, ok) = w.run(w.release(json!({"dryRun": true})), Config::default()).await;
    assert!(ok, "{planned:#}");
    assert_eq!(planned["outcome"], "planned");
    assert!(w.recorder.writes().is_empty());
    assert_eq!(
        planned["steps"].as_array().unwrap().last().unwrap()["step"],
        "DeleteRolePolicy"
    );
    assert!(w.account.revocation(&w.role.name).await.is_some());

    let (released, ok) = w.run(w.release(json!({})), Config::default()).await;
    assert!(ok, "{released:#}");
    assert_eq!(released["outcome"], "released");
    assert_eq!(released["operation"]["forced"], false);
    assert_eq!(w.account.revocation(&w.role.name).await, None);

    // A longer hold configured: the same cut-off is too recent.
    w.account.revoked_hours_ago(&w.role.name, 13).await;
    w.recorder.clear();
    let config = Config {
        revoke_hold_hours: 24,
        ..Config::default()
    };
    let (held, _) = w.run(w.release(json!({})), config).await;
    assert_skipped_without_writes(&held, &w.recorder, "24 h after the cut-off");
}

/// A role revoked through the IAM console's "Revoke active sessions" is released like one revoked
/// here, once its hold is over: the console's document means exactly the same (arrays, its own
/// date form).
#[tokio::test]
async fn the_console_s_revocation_is_released_after_the_hold() {
    let w = World::start().await;
    let cutoff = (Utc::now() - Duration::hours(13)).format("%Y-%m-%dT%H:%M:%SZ");
    let console = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Deny","Action":["*"],"Resource":["*"],"Condition":{{"DateLessThan":{{"aws:TokenIssueTime":"{cutoff}"}}}}}}]}}"#
    );
    w.account.put_revocation(&w.role.name, &console).await;
    let (released, ok) = w.run(w.release(json!({})), Config::default()).await;
    assert!(ok, "{released:#}");
    assert_eq!(released["outcome"], "released", "{released:#}");
    assert_eq!(w.recorder.writes(), ["DeleteRolePolicy"]);
    assert_eq!(w.account.revocation(&w.role.name).await, None);
}

#[tokio::test]
async fn a_document_that_is_more_than_a_revocation_is_never_removed_even_forced() {
    let w = World::start().await;
    // The console's revocation with a statement added by hand: removing it removes that too.
    let more = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":["*"],"Resource":["*"],"Condition":{"DateLessThan":{"aws:TokenIssueTime":"2026-01-01T00:00:00.000Z"}}},{"Effect":"Deny","Action":"s3:*","Resource":"*"}]}"#;
    w.account.put_revocation(&w.role.name, more).await;
    let (report, ok) = w
        .run(
            w.release(json!({"force": true, "reason": "cleanup"})),
            Config::default(),
        )
        .await;
    assert!(ok, "{report:#}");
    assert_skipped_without_writes(&report, &w.recorder, "is not a revocation alone");
    assert_eq!(w.account.revocation(&w.role.name).await.as_deref(), Some(more));
}

#[tokio::test]
async fn the_managed_fallback_is_detached_and_kept_and_protected_roles_are_refused() {
    let w = World::start().await;
    let old = document(Utc::now() - Duration::hours(20));
    let fallback = fallback_name(&w.role.name);
    let arn = w
        .account
        .attach_new_policy(&w.role.name, (&fallback, FALLBACK_PATH), &old)
        .await;
    let guarded = Config {
        protected_roles: vec![w.role.name.clone()],
        ..Config::default()
    };
    let (refused, _) = w.run(w.release(json!({})), guarded).await;
    assert_skipped_without_writes(&refused, &w.recorder, "PROTECTED_ROLES");

    let (released, ok) = w.run(w.release(json!({})), Config::default()).await;
    assert!(ok, "{released:#}");
    assert_eq!(released["outcome"], "released");
    assert_eq!(w.recorder.writes(), ["DetachRolePolicy"]);
    assert!(fallback_arns(&w.account, &w.role.name).await.is_empty());
    // Detached, not deleted: the policy stays as the record of what was in force.
    assert!(w.account.iam.get_policy().policy_arn(&arn).send().await.is_ok());
    assert_eq!(released["operation"]["documents"][0]["holder"]["arn"], arn);
}

/// Isolate `instance` through a containment run; returns the profile it held.
async fn isolated(w: &World, instance: &str, config: Config) -> String {
    let (report, ok) = w
        .run(finding("outside-aws.json", &w.role, Some(instance)), config)
        .await;
    assert!(ok, "{report:#}");
    let tags = w.account.tags(instance).await;
    assert!(tags.contains_key(ISOLATED_AT), "{tags:?}");
    w.role.profile_arn.clone()
}

fn restore(instance: &str) -> Value {
    json!({"operation": "restore", "instanceId": instance, "reason": "IR-9 cleared"})
}

#[tokio::test]
async fn an_isolated_instance_gets_its_recorded_profile_back_and_its_mark_cleared() {
    let w = World::start().await;
    let named = w.account.instance(Some(&w.role.profile_arn), &[(KEY, "isolate")]).await;
    let profile = isolated(&w, &named, Config::default()).await;
    assert_eq!(w.account.association(&named).await, None);
    w.recorder.clear();

    let (report, ok) = w.run(restore(&named), Config::default()).await;
    assert!(ok, "{report:#}");
    assert_eq!(report["outcome"], "restored", "{report:#}");
    assert_eq!(
        w.account.association(&named).await.map(|(_, p)| p),
        Some(profile.clone())
    );
    let tags = w.account.tags(&named).await;
    assert!(!tags.contains_key(ISOLATED_AT), "{tags:?}");
    assert_eq!(tags.get(PROFILE), Some(&profile), "the record stays");
    assert_eq!(w.recorder.writes(), ["AssociateIamInstanceProfile", "DeleteTags"]);
    assert_eq!(report["operation"]["profile"], profile);
    assert_eq!(report["role"]["name"], w.role.name);

    // Restored already: no mark, nothing to do.
    w.recorder.clear();
    let (again, _) = w.run(restore(&named), Config::default()).await;
    assert_skipped_without_writes(&again, &w.recorder, "not isolated by exfil-responder");
}

#[tokio::test]
async fn the_quarantine_profile_is_replaced_by_the_recorded_one() {
    let w = World::start().await;
    let quarantine_role = w.account.role("QuarantineRole", &[]).await;
    let config = || Config {
        quarantine_profile: Some("QuarantineRoleProfile".into()),
        ..Config::default()
    };
    let named = w.account.instance(Some(&w.role.profile_arn), &[(KEY, "isolate")]).await;
    let profile = isolated(&w, &named, config()).await;
    assert_eq!(
        w.account.association(&named).await.map(|(_, p)| p),
        Some(quarantine_role.profile_arn)
    );
    w.recorder.clear();

    let (report, ok) = w.run(restore(&named), config()).await;
    assert!(ok, "{report:#}");
    assert_eq!(report["outcome"], "restored");
    assert_eq!(w.account.association(&named).await.map(|(_, p)| p), Some(profile));
    assert_eq!(
        w.recorder.writes(),
        [
            "DisassociateIamInstanceProfile",
            "AssociateIamInstanceProfile",
            "DeleteTags"
        ]
    );
}

#[tokio::test]
async fn restore_refuses_what_it_did_not_isolate_and_profiles_it_must_not_attach() {
    let w = World::start().await;
    let admin = w
        .account
        .role("BreakGlass", &[("exfil-responder:protected", "true")])
        .await;
    let isolated_at = ("exfil-responder:isolated-at", "2026-11-20T10:00:00.000Z");
    let cases = [
        (vec![(KEY, "cycle")], "not isolated by exfil-responder"),
        (vec![isolated_at], "no instance profile recorded"),
        // Tags anyone with CreateTags could forge: a protected role's profile, another account's.
        (vec![isolated_at, (PROFILE, admin.profile_arn.as_str())], "protected"),
        (
            vec![
                isolated_at,
                (PROFILE, "arn:aws:iam::999999999999:instance-profile/Admin"),
            ],
            "not an instance profile of its account",
        ),
        (
            vec![
                isolated_at,
                (PROFILE, "arn:aws:iam::123456789012:instance-profile/Gone"),
            ],
            "no longer exists",
        ),
    ];
    for (tags, why) in cases {
        let bare = w.account.instance(None, &tags).await;
        w.recorder.clear();
        let (report, ok) = w.run(restore(&bare), Config::default()).await;
        assert!(ok, "{report:#}");
        assert_skipped_without_writes(&report, &w.recorder, why);
        assert_eq!(w.account.association(&bare).await, None, "{why}");
    }
    w.recorder.clear();
    let (missing, _) = w.run(restore("i-0123456789abcdef0"), Config::default()).await;
    assert_skipped_without_writes(&missing, &w.recorder, "no instance i-0123456789abcdef0");
}
